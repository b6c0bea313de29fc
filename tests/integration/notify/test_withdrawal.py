"""A void withdraws drug-alert evidence, on the real parts: overdoses posted to the incident
service (real Kafka, PostgreSQL), a room's void posted to intake (``/v1/corrections/void``,
topic dcr.corrections), the incident service's alert worker and notifier, the mail sink and a
webhook receiver, and the projection's read model and metrics.

* An alert raised from N = 3 reports loses its basis when one is voided (while the incident
  service is down: the next session applies it): it is withdrawn (``dk.dcr.alert.withdrawn``,
  once, also when the void is sent again), every recipient of the raised alert gets one "Withdrawn:
  a report was corrected" message without client or report ids, the read model shows state
  ``withdrawn`` and ``dcr_drug_alerts_by_state`` counts it.
* An alert raised from N + 1 = 4 reports keeps its basis when one is voided: no event, nothing
  sent, the alert stays open.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest

from services.incident.app import create_app as create_incident
from services.intake.app import create_app as create_intake
from services.projection.app import create_app as create_projection
from shared.events.payloads import DrugAlertRaised, DrugAlertWithdrawn
from shared.kafka import topics
from tests.integration.ingest.conftest import alert_worker_caught_up, at, bearer
from tests.integration.notify.conftest import NotifyEnv, post_overdoses
from tests.integration.notify.receivers import mails
from tests.integration.notify.test_lifecycle import alert_events
from tests.support import ops_auth, poll_until, serve

pytestmark = pytest.mark.integration

VESTERBRO_EMAILS = 4  # two rooms, outreach, ops (tests/integration/notify/receivers.py)
PER_EVENT = VESTERBRO_EMAILS + 1  # and outreach's webhook
HEX_ID = re.compile(
    r"\b[0-9a-f]{64}\b|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


async def void(intake: httpx.AsyncClient, n: NotifyEnv, facility: str, event_id: str) -> None:
    r = await intake.post(
        "/v1/corrections/void",
        json={
            "facility_id": facility,
            "target_event_id": event_id,
            "reason": "duplicate",
            "occurred_at": at(5),
        },
        headers=bearer(n.env, facility),
    )
    assert r.status_code == 202, r.text


async def raised_alert(n: NotifyEnv) -> DrugAlertRaised:
    async def raised() -> list[Any]:
        return [d for t, d in await alert_events(n) if t == "dk.dcr.alert.raised"]

    [alert] = await poll_until(raised, timeout=30, what="the raised alert")
    assert isinstance(alert, DrugAlertRaised)
    return alert


async def episode_row(n: NotifyEnv, alert_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(n.env.dsn)
    try:
        row = await conn.fetchrow(
            "SELECT withdrawn_at, resolved_at FROM alert_episodes WHERE alert_id = $1::uuid",
            alert_id,
        )
    finally:
        await conn.close()
    assert row is not None
    return row


async def test_voiding_one_of_three_reports_withdraws_the_alert_and_notifies_once(
    notify_env: NotifyEnv,
) -> None:
    n = notify_env
    async with serve(create_incident(config=n.incident())) as incident:
        ids = await post_overdoses(
            incident, n.env, [("halmtorv", 40), ("maendenes-hjem", 30), ("halmtorv", 20)]
        )
        alert = await raised_alert(n)
        assert alert.overdoses_in_window == 3
        await poll_until(
            lambda: n.all_delivered(PER_EVENT), timeout=30, what="the raised alert delivered"
        )
    # the incident service (alert worker) is down when the room voids the report; a new
    # session (restart or another instance taking the lead) applies it from the topic
    async with serve(create_intake(config=n.env.ingest())) as intake:
        await void(intake, n, "maendenes-hjem", ids[1])
    async with (
        serve(create_incident(config=n.incident())),
        serve(create_intake(config=n.env.ingest())) as intake,
    ):
        await poll_until(
            lambda: n.all_delivered(2 * PER_EVENT),
            timeout=30,
            what="the withdrawal delivered to every recipient of the raised alert",
        )
        await void(intake, n, "maendenes-hjem", ids[1])  # a repeated void changes nothing
        await poll_until(
            lambda: alert_worker_caught_up(n.env, topics.CORRECTIONS),
            timeout=30,
            what="the alert worker to have consumed both voids",
        )

    events = await alert_events(n)
    assert Counter(t for t, _ in events) == {
        "dk.dcr.alert.raised": 1,
        "dk.dcr.alert.withdrawn": 1,
    }
    [withdrawn] = [d for t, d in events if t == "dk.dcr.alert.withdrawn"]
    assert isinstance(withdrawn, DrugAlertWithdrawn)
    assert withdrawn.alert_id == alert.alert_id and withdrawn.episode == alert.episode
    assert (withdrawn.overdoses_remaining, withdrawn.threshold) == (2, 3)
    assert (await episode_row(n, alert.alert_id))["withdrawn_at"] is not None
    assert await n.delivery_states() == {"delivered": 2 * PER_EVENT}

    got = [m for m in mails(n.mail_dir) if "Withdrawn" in str(m["Subject"])]
    assert sorted(str(m["To"]) for m in got) == sorted(
        str(m["To"]) for m in mails(n.mail_dir) if "Overdose cluster" in str(m["Subject"])
    )
    assert len(got) == VESTERBRO_EMAILS
    for m in got:
        assert "Withdrawn: a report was corrected - Vesterbro" in str(m["Subject"])
        text = m.get_content()
        assert "is withdrawn: a report was corrected" in text
        assert "2 remain in its window, fewer than the 3 an alert needs" in text
        assert "Stand down the measures taken for this alert only" in text
        assert not HEX_ID.search(text.replace(alert.alert_id, "")), "no report or client ids"
        assert all(i not in text for i in ids)
    hooks = [json.loads(h.body) for h in n.webhook.accepted()]
    assert [h["type"] for h in hooks] == ["dk.dcr.alert.raised", "dk.dcr.alert.withdrawn"]
    assert all(h.signature_ok for h in n.webhook.accepted())
    assert hooks[1]["alert_id"] == alert.alert_id and hooks[1]["overdoses_remaining"] == 2
    assert all(i not in json.dumps(hooks) for i in ids)

    async with serve(create_projection(n.env.projection()), headers=ops_auth(n.env)) as projection:

        async def withdrawn_in_read_model() -> list[dict[str, Any]]:
            r = await projection.get("/v1/alerts", params={"district": "vesterbro"})
            return [a for a in r.json()["alerts"] if a["state"] == "withdrawn"]

        [row] = await poll_until(
            withdrawn_in_read_model, timeout=30, what="the read model to show the withdrawal"
        )
        assert row["alert_id"] == alert.alert_id

        async def metrics() -> str:
            text = (await projection.get("/metrics")).text
            wanted = 'dcr_drug_alerts_by_state{district="vesterbro",state="withdrawn"} 1.0'
            return text if wanted in text else ""

        text = await poll_until(metrics, timeout=30, what="the withdrawn alert in the metrics")
        assert 'dcr_drug_alerts_open{district="vesterbro"} 0.0' in text


async def test_voiding_one_of_four_reports_leaves_the_alert_and_sends_nothing(
    notify_env: NotifyEnv,
) -> None:
    n = notify_env
    async with (
        serve(create_incident(config=n.incident())) as incident,
        serve(create_intake(config=n.env.ingest())) as intake,
    ):
        ids = await post_overdoses(
            incident,
            n.env,
            [("halmtorv", 50), ("maendenes-hjem", 40), ("halmtorv", 30), ("halmtorv", 20)],
        )
        alert = await raised_alert(n)
        await poll_until(
            lambda: n.all_delivered(PER_EVENT), timeout=30, what="the raised alert delivered"
        )
        await void(intake, n, "maendenes-hjem", ids[1])
        await poll_until(
            lambda: alert_worker_caught_up(n.env, topics.CORRECTIONS),
            timeout=30,
            what="the alert worker to have consumed the void",
        )
        # the void is applied: it is stored, and the voided overdose no longer counts
        conn = await asyncpg.connect(n.env.dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM alert_voids") == 1
            assert await conn.fetchval("SELECT count(*) FROM alert_overdoses") == 3
        finally:
            await conn.close()

    assert [t for t, _ in await alert_events(n)] == ["dk.dcr.alert.raised"]
    row = await episode_row(n, alert.alert_id)
    assert row["withdrawn_at"] is None and row["resolved_at"] is None
    assert await n.delivery_states() == {"delivered": PER_EVENT}
    assert not [m for m in mails(n.mail_dir) if "Withdrawn" in str(m["Subject"])]
