"""The drug alert lifecycle on the real parts: raised -> acknowledged by an ops user over HTTP ->
resolved after the (short, configured) quiet period by event time; each step is one event on the
alerts topic and one notification per district recipient and channel; only ops tokens may
acknowledge."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from services.incident.app import create_app as create_incident
from services.projection.app import create_app as create_projection
from shared.events.envelope import decode
from shared.events.payloads import DrugAlertRaised
from shared.kafka import topics
from tests.integration.ingest.conftest import bearer
from tests.integration.notify.conftest import NotifyEnv, post_overdoses
from tests.integration.notify.receivers import mails
from tests.support import ops_auth, poll_until, read_topic, serve

pytestmark = pytest.mark.integration

VESTERBRO_EMAILS = 4  # two rooms, outreach, ops (tests/integration/notify/receivers.py)
LIFECYCLE = ["dk.dcr.alert.raised", "dk.dcr.alert.acknowledged", "dk.dcr.alert.resolved"]


async def alert_events(n: NotifyEnv) -> list[tuple[str, object]]:
    return [
        (r.headers["ce_type"].decode(), decode(r.headers, r.value).data)
        for r in await read_topic(n.env.bootstrap, n.env.topic(topics.ALERTS))
    ]


async def test_raised_acknowledged_resolved_each_notified_once(
    notify_env: NotifyEnv,
) -> None:
    n = notify_env
    # The last overdose happened 20 min ago: with a 15 min quiet period the episode has ended
    # (by event time) as soon as it is raised - no waiting.
    quiet_15 = n.incident(quiet_period=timedelta(minutes=15))
    async with serve(create_incident(config=quiet_15)) as incident:
        await post_overdoses(
            incident, n.env, [("halmtorv", 40), ("maendenes-hjem", 30), ("halmtorv", 20)]
        )
        [(_, raised)] = await poll_until(
            lambda: _of_type(n, "dk.dcr.alert.raised"), timeout=30, what="the raised alert"
        )
        assert isinstance(raised, DrugAlertRaised)
        ack = f"/v1/alerts/{raised.alert_id}/ack"

        assert (await incident.post(ack)).status_code == 401
        assert (await incident.post(ack, headers=bearer(n.env, "halmtorv"))).status_code == 403
        missing = await incident.post(
            "/v1/alerts/" + "0" * 32 + "/ack", headers=bearer(n.env, "ops-oncall")
        )
        assert missing.status_code == 404
        first = await incident.post(ack, headers=bearer(n.env, "ops-oncall"))
        assert first.status_code == 202, first.text
        assert first.json()["acknowledged_by"] == "ops-oncall"
        again = await incident.post(ack, headers=bearer(n.env, "ops-oncall"))
        assert again.status_code == 200 and again.json() == first.json()

        await poll_until(
            lambda: n.all_delivered(3 * (VESTERBRO_EMAILS + 1)),
            timeout=30,
            what="raised, acknowledged and resolved delivered to every recipient",
        )
    events = await alert_events(n)
    assert sorted(Counter(t for t, _ in events).items()) == [(t, 1) for t in sorted(LIFECYCLE)]
    [(_, resolved)] = [e for e in events if e[0] == "dk.dcr.alert.resolved"]
    assert resolved.alert_id == raised.alert_id
    assert resolved.quiet_period_s == 900

    subjects = Counter(str(m["Subject"]).split(":")[0].strip() for m in mails(n.mail_dir))
    assert subjects == {
        "[DCR drug alert] Overdose cluster": VESTERBRO_EMAILS,
        "[DCR drug alert] Acknowledged": VESTERBRO_EMAILS,
        "[DCR drug alert] Resolved": VESTERBRO_EMAILS,
    }
    hooks = [json.loads(h.body)["type"] for h in n.webhook.accepted()]
    assert sorted(hooks) == sorted(LIFECYCLE)

    # the projection's read model and metrics show the states
    async with serve(create_projection(n.env.projection()), headers=ops_auth(n.env)) as projection:

        async def resolved_in_read_model() -> list[dict[str, Any]]:
            r = await projection.get("/v1/alerts", params={"district": "vesterbro"})
            return [a for a in r.json()["alerts"] if a["state"] == "resolved"]

        [alert] = await poll_until(
            resolved_in_read_model, timeout=30, what="the read model to show the resolution"
        )
        assert alert["alert_id"] == raised.alert_id
        assert alert["acknowledged_at"] == first.json()["acknowledged_at"]
        assert alert["seconds_to_acknowledge"] >= 0 and alert["resolved_at"] is not None

        async def metrics() -> str:
            text = (await projection.get("/metrics")).text
            return (
                text
                if 'dcr_drug_alerts_by_state{district="vesterbro",state="resolved"} 1.0' in text
                else ""
            )

        text = await poll_until(metrics, timeout=30, what="the lifecycle metrics")
        assert 'dcr_drug_alerts_open{district="vesterbro"} 0.0' in text
        assert 'dcr_drug_alert_seconds_to_acknowledge_count{district="vesterbro"} 1.0' in text


async def _of_type(n: NotifyEnv, event_type: str) -> list[tuple[str, object]]:
    return [e for e in await alert_events(n) if e[0] == event_type]
