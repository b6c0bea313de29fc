"""Drug alerts end to end: incidents posted to the incident API -> the alert worker (consuming the
real incidents topic) -> exactly one record per episode on the alerts topic, also across a
restart of the service. Overdoses in vesterbro and sydhavn are posted only here (other tests'
incidents would count towards the window)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from services.incident.app import create_app as create_incident
from shared.events.envelope import decode
from shared.events.payloads import DrugAlertRaised
from shared.events.vocabulary import AlertReason
from shared.kafka import topics
from tests.integration.ingest.conftest import (
    alert_worker_caught_up,
    at,
    bearer,
    check_cloudevent,
)
from tests.support import Record, isolated_env, poll_until, read_topic, serve

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration


def overdose(facility: str, minutes_ago: float) -> dict[str, object]:
    return {
        "facility_id": facility,
        "occurred_at": at(minutes_ago),
        "kind": "opioid_overdose",
        "severity": "severe",
        "life_threatening": True,
        "interventions": {"naloxone_doses": 2},
        "outcome": "recovered_on_site",
        "suspected_substance": "heroin",
    }


async def alerts(env: TestEnv, district: str, reason: AlertReason) -> list[Record]:
    """The raised alerts of ``district`` for ``reason`` (lifecycle events on the same topic,
    e.g. the resolution of a late episode that is already quiet, are not raised alerts)."""
    out = []
    for record in await read_topic(env.bootstrap, env.topic(topics.ALERTS)):
        data = decode(record.headers, record.value).data
        if not isinstance(data, DrugAlertRaised):
            continue
        if data.district == district and data.reason is reason:
            out.append(record)
    return out


async def post(
    client: httpx.AsyncClient,
    env: TestEnv,
    path: str,
    body: dict[str, object],
) -> str:
    principal = str(body["facility_id"])
    r = await client.post(path, json=body, headers=bearer(env, principal))
    assert r.status_code == 202, r.text
    return str(r.json()["event_id"])


async def caught_up(env: TestEnv) -> None:
    await poll_until(
        lambda: alert_worker_caught_up(env),
        timeout=30,
        what="the alert worker to commit every incident",
    )


async def test_overdose_cluster_raises_one_alert_per_episode(
    test_env: TestEnv, incident: httpx.AsyncClient
) -> None:
    assert await alerts(test_env, "vesterbro", AlertReason.OVERDOSE_CLUSTER) == []
    await post(incident, test_env, "/v1/incidents", overdose("halmtorv", 100))
    await post(incident, test_env, "/v1/incidents", overdose("maendenes-hjem", 70))
    await caught_up(test_env)
    assert await alerts(test_env, "vesterbro", AlertReason.OVERDOSE_CLUSTER) == []

    await post(incident, test_env, "/v1/incidents", overdose("halmtorv", 40))
    [record] = await poll_until(
        lambda: alerts(test_env, "vesterbro", AlertReason.OVERDOSE_CLUSTER),
        timeout=30,
        what="an overdose cluster alert for vesterbro",
    )
    env = check_cloudevent(
        record,
        event_id=record.headers["ce_id"].decode(),
        event_type="dk.dcr.alert.raised",
        source="/districts/vesterbro",
        key="vesterbro",
    )
    assert isinstance(env.data, DrugAlertRaised)
    assert env.data.overdoses_in_window == 3 and env.data.facility_id == "halmtorv"

    await post(incident, test_env, "/v1/incidents", overdose("maendenes-hjem", 10))  # 4th
    await caught_up(test_env)
    assert len(await alerts(test_env, "vesterbro", AlertReason.OVERDOSE_CLUSTER)) == 1

    conn = await asyncpg.connect(test_env.dsn)
    try:
        assert (
            await conn.fetchval("SELECT count(*) FROM alert_overdoses WHERE district = 'vesterbro'")
            == 4
        )
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM alert_episodes WHERE district = 'vesterbro' "
                "AND reason = 'overdose_cluster' AND published"
            )
            == 1
        )
    finally:
        await conn.close()


async def test_restarted_worker_does_not_raise_the_episode_again(test_env: TestEnv) -> None:
    """A new service instance rebuilds the window from PostgreSQL and resumes at the committed
    offsets: three more overdoses continuing the same episode raise nothing (a worker that
    forgot the episode would count them as a new cluster)."""
    async with serve(create_incident(config=test_env.incident())) as first:
        for minutes_ago in (50, 40, 30):
            await post(first, test_env, "/v1/incidents", overdose("sydhavn", minutes_ago))
        before = await poll_until(
            lambda: alerts(test_env, "sydhavn", AlertReason.OVERDOSE_CLUSTER),
            timeout=30,
            what="an overdose cluster alert for sydhavn",
        )
    assert len(before) == 1
    async with serve(create_incident(config=test_env.incident())) as restarted:
        for minutes_ago in (20, 15, 5):
            await post(restarted, test_env, "/v1/incidents", overdose("sydhavn", minutes_ago))
        await caught_up(test_env)
    assert await alerts(test_env, "sydhavn", AlertReason.OVERDOSE_CLUSTER) == before


async def test_unexpected_substance_raises_one_adulterant_alert(
    test_env: TestEnv, incident: httpx.AsyncClient
) -> None:
    """One alert per district, substance and local day: a second finding the same local day
    raises nothing. Both findings are taken on the local day of the first, whatever the hour
    (20 minutes ago may be yesterday, local time, just after midnight)."""
    check = {"facility_id": "nordvest", "expected": "heroin", "found": ["heroin", "fentanyl"]}
    first, second = same_local_day(datetime.now(UTC), test_env.platform().city.zone)
    await post(incident, test_env, "/v1/drug-checks", {**check, "occurred_at": first})
    [record] = await poll_until(
        lambda: alerts(test_env, "nordvest", AlertReason.ADULTERANT_FOUND),
        timeout=30,
        what="an adulterant alert for nordvest",
    )
    data = decode(record.headers, record.value).data
    assert isinstance(data, DrugAlertRaised) and data.substance == "fentanyl"
    await post(incident, test_env, "/v1/drug-checks", {**check, "occurred_at": second})
    await caught_up(test_env)
    assert len(await alerts(test_env, "nordvest", AlertReason.ADULTERANT_FOUND)) == 1


def same_local_day(now: datetime, zone: ZoneInfo) -> tuple[str, str]:
    """Two report times, 20 minutes ago and at most 1 minute ago, on one local day: the second
    is moved back to the first's last second when local midnight lies between them."""
    first = now - timedelta(minutes=20)
    local = first.astimezone(zone)
    next_midnight = datetime.combine(local.date() + timedelta(days=1), time(), zone)
    second = min(now - timedelta(minutes=1), next_midnight - timedelta(seconds=1))
    return first.isoformat(), second.astimezone(UTC).isoformat()


async def test_same_client_event_id_at_two_facilities_still_raises_the_alert(
    test_env: TestEnv,
) -> None:
    """The collision case: halmtorv and maendenes-hjem both post an overdose with client event
    id ...00d1, then halmtorv posts ...00d2: three vesterbro overdoses, one alert (dedupe is by
    CloudEvents source + id). An isolated database and topic prefix keep other tests' vesterbro
    overdoses out."""
    async with (
        isolated_env(test_env, label="collide", drop_topics=True) as env,
        serve(create_incident(config=env.incident())) as incident,
    ):
        d1, d2 = str(UUID(int=0xD1)), str(UUID(int=0xD2))
        for facility, event_id, minutes_ago in (
            ("halmtorv", d1, 30),
            ("maendenes-hjem", d1, 20),
            ("halmtorv", d2, 10),
        ):
            assert (
                await post(
                    incident,
                    env,
                    "/v1/incidents",
                    {**overdose(facility, minutes_ago), "event_id": event_id},
                )
                == event_id
            )
        [record] = await poll_until(
            lambda: alerts(env, "vesterbro", AlertReason.OVERDOSE_CLUSTER),
            timeout=30,
            what="the vesterbro alert despite the colliding event ids",
        )
        data = decode(record.headers, record.value).data
        assert isinstance(data, DrugAlertRaised) and data.overdoses_in_window == 3
        assert not data.late
        conn = await asyncpg.connect(env.dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM alert_overdoses") == 3
        finally:
            await conn.close()


async def test_late_reports_raise_a_late_alert_and_too_late_ones_are_counted(
    test_env: TestEnv,
) -> None:
    """Three overdoses reported now that happened 5 h ago (within DCR_ALERTS_MAX_LATENESS, 6 h)
    raise the alert, marked late; one that happened 7 h ago changes nothing and is counted."""
    async with (
        isolated_env(test_env, label="late", drop_topics=True) as env,
        serve(create_incident(config=env.incident())) as incident,
    ):
        before = _too_late()
        await post(incident, env, "/v1/incidents", overdose("nordvest", 7 * 60))
        for minutes_ago in (5 * 60 + 20, 5 * 60 + 10, 5 * 60):
            await post(incident, env, "/v1/incidents", overdose("nordvest", minutes_ago))
        [record] = await poll_until(
            lambda: alerts(env, "nordvest", AlertReason.OVERDOSE_CLUSTER),
            timeout=30,
            what="the late nordvest alert",
        )
        data = decode(record.headers, record.value).data
        assert isinstance(data, DrugAlertRaised) and data.late
        assert data.overdoses_in_window == 3  # the 7 h old one is not in the window
        assert _too_late() == before + 1


def _too_late() -> float:
    return (
        REGISTRY.get_sample_value("dcr_drug_alert_reports_ignored_total", {"reason": "too_late"})
        or 0.0
    )


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (datetime(2026, 11, 29, 23, 10, tzinfo=UTC), date(2026, 11, 29)),  # 00:10 local
        (datetime(2027, 7, 1, 22, 5, tzinfo=UTC), date(2027, 7, 1)),  # 00:05 local, summer
        (datetime(2027, 7, 1, 12, 0, tzinfo=UTC), date(2027, 7, 1)),
    ],
)
def test_both_findings_are_on_one_local_day_at_any_hour(now: datetime, day: date) -> None:
    zone = ZoneInfo("Europe/Copenhagen")
    first, second = (datetime.fromisoformat(t) for t in same_local_day(now, zone))
    assert first.astimezone(zone).date() == second.astimezone(zone).date() == day
    assert first <= second <= now - timedelta(minutes=1)
