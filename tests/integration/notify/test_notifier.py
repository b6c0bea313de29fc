"""Drug alert notifications on the real parts: overdoses posted over HTTP to the incident service
(real Kafka, PostgreSQL), its alert worker and notifier, a real SMTP server (the project's mail
sink) and a real HTTP webhook receiver verifying signatures. Every district recipient gets exactly
one e-mail and every webhook recipient one signed webhook; other districts hear nothing; a notifier
killed in the middle of a delivery loses and doubles nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from harness.process import INCIDENT_APP, ServiceProcess
from services.incident.app import create_app as create_incident
from tests.integration.notify.conftest import NotifyEnv, post_overdoses
from tests.integration.notify.receivers import (
    mails,
)
from tests.support import poll_until, serve

pytestmark = pytest.mark.integration

VESTERBRO = {"halmtorv-staff", "mh-staff", "outreach", "ops"}
PSEUDONYM = re.compile(r"\b[0-9a-f]{64}\b")


def check_mails(n: NotifyEnv) -> None:
    got = mails(n.mail_dir)
    to = sorted(str(m["To"]) for m in got)
    assert to == sorted(n.recipients[r]["email"] for r in VESTERBRO)  # each exactly once
    for m in got:
        assert "Overdose cluster: 3 overdoses in Vesterbro within 2 h" in str(m["Subject"])
        text = m.get_content()
        for needle in (
            "DRUG ALERT - Vesterbro",
            "Since: ",
            "Halmtorv (temporary room)",
            "Mændenes Hjem, Istedgade",
            "What to do: Warn clients",
            "naloxone",
            "?var-district=vesterbro",
        ):
            assert needle in text, needle
        assert not PSEUDONYM.search(text)
    assert len({m["Message-ID"] for m in got}) == len(got)


def check_webhook(n: NotifyEnv) -> None:
    [hook] = n.webhook.accepted()
    assert hook.signature_ok and hook.path == "/hooks/outreach"
    body = json.loads(hook.body)
    assert body["type"] == "dk.dcr.alert.raised"
    assert body["district"] == "vesterbro" and body["reason"] == "overdose_cluster"
    assert body["overdoses_in_window"] == 3 and body["late"] is False
    assert not PSEUDONYM.search(hook.body.decode())


async def test_three_overdoses_reach_every_district_recipient_exactly_once(
    notify_env: NotifyEnv,
) -> None:
    n = notify_env
    async with serve(create_incident(config=n.incident())) as incident:
        await post_overdoses(
            incident, n.env, [("halmtorv", 30), ("maendenes-hjem", 20), ("halmtorv", 10)]
        )
        await poll_until(
            lambda: n.all_delivered(len(VESTERBRO) + 1),
            timeout=30,
            what="4 e-mails and 1 webhook delivered",
        )
        health = (await incident.get("/healthz")).json()["checks"]
        assert health["notifier"] is True and health["alert_worker"] is True
    check_mails(n)
    check_webhook(n)


async def test_notifier_killed_mid_delivery_loses_and_doubles_nothing(
    notify_env: NotifyEnv, tmp_path: Path
) -> None:
    """The webhook receiver kills the incident process while handling its first request (the
    notifier has sent, nothing is recorded yet); a restarted process resends after the lease,
    with the same delivery id, and every recipient ends with exactly one message."""
    n = notify_env
    proc = ServiceProcess(tmp_path, "incident", INCIDENT_APP, base=n.child_env()).start()
    first: list[str] = []

    def kill_on_first(hook: object) -> int:
        if not first:
            first.append(str(getattr(hook, "headers", {}).get("x-dcr-delivery")))
            proc.kill9()
            return 503
        return 200

    n.webhook.on_request = kill_on_first
    try:
        await proc.wait_healthy()
        async with httpx.AsyncClient(base_url=proc.url, timeout=10) as c:
            await post_overdoses(c, n.env, [("halmtorv", 30), ("halmtorv", 20), ("halmtorv", 10)])
        await poll_until(lambda: _dead(proc), timeout=30, what="the kill mid-delivery")
        restarted = proc.restarted().start()
        try:
            await restarted.wait_healthy()
            await poll_until(
                lambda: n.all_delivered(len(VESTERBRO) + 1),
                timeout=30,
                what="every delivery completed after the restart",
            )
        finally:
            restarted.terminate()
    finally:
        proc.terminate()
    check_mails(n)
    check_webhook(n)
    assert n.webhook.accepted()[0].headers["x-dcr-delivery"] == first[0]  # same delivery id


async def _dead(proc: ServiceProcess) -> bool:
    return not proc.alive
