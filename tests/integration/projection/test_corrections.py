"""Issue 13, plausibility and corrections through the real Kafka and PostgreSQL:

* a room voids its own reports (visit, referral, incident, dispensing) through the intake API;
  every read model drops them; a void by another room changes nothing of this room's;
* a void that arrives BEFORE its target gives the same tables as one arriving after, and a
  rebuild (other batch boundaries, other order) reproduces the live tables exactly;
* a visit longer than the maximum (12 h) is a visit without a duration; an end arriving before
  its start is held apart (no figure, no day) and reconciled when the start arrives.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest

from harness.process import run_module
from services.incident.app import create_app as incident_app
from services.intake.app import create_app as intake_app
from services.projection import domain
from services.projection.app import create_app as projection_app
from services.projection.store import READ_MODEL_TABLES
from services.supply.app import create_app as supply_app
from shared.events import payloads as p
from shared.events.envelope import Envelope
from shared.events.vocabulary import IncidentKind, VoidReason
from shared.kafka.deadletter import REASON_HEADER
from shared.kafka.topics import DEADLETTER
from tests.integration.projection.harness import produce, snapshot, wait_caught_up
from tests.support import auth, read_topic, serve
from tests.unit.projection import factory as f
from tests.unit.projection.factory import CITY

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration
TABLES = (*READ_MODEL_TABLES, "projection_offsets")


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=CITY.zone)


async def post(client: httpx.AsyncClient, path: str, token: str, **body: Any) -> dict[str, Any]:
    body = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in body.items()}
    r = await client.post(f"/v1{path}", json=body, headers=auth(token))
    assert r.status_code == 202, (path, r.text)
    answer: dict[str, Any] = r.json()
    return answer


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def day_row(dsn: str, district: str, day: date) -> dict[str, Any]:
    rows = await fetch(
        dsn, "SELECT * FROM district_daily WHERE district = $1 AND day = $2", district, day
    )
    return dict(rows[0]) if rows else {}


async def rebuild_equals_live(env: TestEnv) -> None:
    live = await snapshot(env.dsn, TABLES)
    done = await run_module("services.projection.rebuild", base=env.env())
    assert done.code == 0, done.err
    assert await snapshot(env.dsn, TABLES) == live


async def test_a_room_voids_its_own_reports_and_every_read_model_drops_them(
    iso_env: TestEnv,
) -> None:
    day = datetime.now(CITY.zone).date() - timedelta(days=1)
    ht, nv = iso_env.tokens["halmtorv"], iso_env.tokens["nordvest"]
    visit = {"facility_id": "halmtorv", "substances": ["heroin"], "route": "inject"}
    async with (
        serve(intake_app(config=iso_env.ingest())) as intake,
        serve(supply_app(config=iso_env.ingest())) as supply,
        serve(incident_app(config=iso_env.incident())) as incident,
        serve(projection_app(iso_env.projection())),
    ):
        kept = await post(
            intake, "/visits", ht, **visit, client_code="A", occurred_at=local(day, 10)
        )
        await post(
            intake,
            "/visits/end",
            ht,
            facility_id="halmtorv",
            visit_id=kept["visit_id"],
            occurred_at=local(day, 10, 30),
        )
        wrong = await post(
            intake, "/visits", ht, **visit, client_code="B", occurred_at=local(day, 11)
        )
        await post(
            intake,
            "/visits/end",
            ht,
            facility_id="halmtorv",
            visit_id=wrong["visit_id"],
            occurred_at=local(day, 11, 20),
        )
        ref_kept = await post(
            intake,
            "/referrals",
            ht,
            facility_id="halmtorv",
            referral_to="housing",
            occurred_at=local(day, 12),
        )
        ref_wrong = await post(
            intake,
            "/referrals",
            ht,
            facility_id="halmtorv",
            referral_to="medical_care",
            occurred_at=local(day, 12),
        )
        seizure = await post(
            incident,
            "/incidents",
            ht,
            facility_id="halmtorv",
            kind="seizure",
            severity="moderate",
            life_threatening=False,
            outcome="recovered_on_site",
            occurred_at=local(day, 13),
        )
        handed = await post(
            supply,
            "/supplies/dispensed",
            ht,
            facility_id="halmtorv",
            items={"syringes": 10},
            occurred_at=local(day, 14),
        )
        for target in (wrong, ref_wrong, seizure, handed):
            await post(
                intake,
                "/corrections/void",
                ht,
                facility_id="halmtorv",
                target_event_id=target["event_id"],
                reason="mistaken",
                occurred_at=local(day, 15),
            )
        # another room cannot void halmtorv's report: its void names its own source
        await post(
            intake,
            "/corrections/void",
            nv,
            facility_id="nordvest",
            target_event_id=ref_kept["event_id"],
            reason="mistaken",
            occurred_at=local(day, 15),
        )
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)

    row = await day_row(iso_env.dsn, "vesterbro", day)
    assert (row["visits"], row["unique_clients"], row["visits_completed"]) == (1, 1, 1)
    assert row["visit_minutes_median"] == 30
    assert (row["referrals"], row["incidents"], row["supplies_dispensed"]) == (1, 0, 0)
    breakdown = await fetch(
        iso_env.dsn,
        "SELECT dimension, key, n FROM district_daily_breakdown WHERE district = 'vesterbro'"
        " AND day = $1 ORDER BY 1, 2",
        day,
    )
    assert [tuple(r) for r in breakdown] == [
        ("referral", "housing", 1),
        ("route", "inject", 1),
        ("substance", "heroin", 1),
    ]
    facility = await fetch(
        iso_env.dsn, "SELECT visits, incidents FROM facility_daily WHERE facility = 'halmtorv'"
    )
    assert [tuple(r) for r in facility] == [(1, 0)]
    assert await fetch(iso_env.dsn, "SELECT * FROM stock_movements") == []
    visits = await fetch(iso_env.dsn, "SELECT visit_id, day FROM visits ORDER BY day")
    # the voided visit's end (not voided) is held apart like any end without a start
    assert [tuple(r) for r in visits] == [(kept["visit_id"], day), (wrong["visit_id"], None)]
    await rebuild_equals_live(iso_env)


async def test_a_void_before_its_target_gives_the_same_tables(iso_env: TestEnv) -> None:
    day = datetime.now(CITY.zone).date() - timedelta(days=2)
    target_id = uuid.uuid4()
    target = f.wrap(p.ReferralMade(referral_to="housing"), local(day, 9), id=target_id)
    other = f.referral(local(day, 9))
    void = f.wrap(p.ReportVoided(target_id=target_id, reason=VoidReason.DUPLICATE), local(day, 10))
    async with serve(projection_app(iso_env.projection())):
        await produce(iso_env.bootstrap, iso_env.topic_prefix, [void])
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        await produce(iso_env.bootstrap, iso_env.topic_prefix, [target, other])
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
    row = await day_row(iso_env.dsn, "vesterbro", day)
    assert row["referrals"] == 1
    events = await fetch(iso_env.dsn, "SELECT type, count(*) FROM projection_events GROUP BY 1")
    assert dict((r[0], r[1]) for r in events) == {
        "dk.dcr.referral.made": 2,  # both claimed (a replay of the target changes nothing)
        "dk.dcr.report.voided": 1,
    }
    await rebuild_equals_live(iso_env)


async def test_implausible_visits_and_orphan_ends(iso_env: TestEnv) -> None:
    day = datetime.now(CITY.zone).date() - timedelta(days=3)
    short_start = f.visit_started("short", local(day, 8), client=1)
    short_end = f.visit_ended("short", local(day, 8, 40))
    long_start = f.visit_started("long", local(day, 8, 30), client=2)
    long_end = f.visit_ended("long", local(day, 21, 0))  # 12.5 h: closed by rule
    early_start = f.visit_started("early", local(day, 9), client=3)
    orphan_end = f.visit_ended("early", local(day, 9, 50))
    async with serve(projection_app(iso_env.projection())):
        # the end of "early" arrives before its start: held apart
        await produce(iso_env.bootstrap, iso_env.topic_prefix, [orphan_end])
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        held = await fetch(iso_env.dsn, "SELECT day, start_time FROM visits")
        assert [tuple(r) for r in held] == [(None, None)]
        assert await day_row(iso_env.dsn, "vesterbro", day) == {}
        await produce(
            iso_env.bootstrap,
            iso_env.topic_prefix,
            [short_start, short_end, long_start, long_end, early_start],
        )
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
    row = await day_row(iso_env.dsn, "vesterbro", day)
    assert (row["visits"], row["visits_completed"]) == (3, 2)  # "long" has no duration
    assert row["visit_minutes_median"] == 45  # median of 40 and 50 minutes
    assert row["visit_minutes_mean"] == 45
    await rebuild_equals_live(iso_env)


async def test_one_id_for_two_different_events_counts_neither_in_any_order(
    iso_env: TestEnv,
) -> None:
    """The reviewer's case, arriving at the projection from outside the ingest services (which
    answer 409): a referral, another referral and a seizure incident under one id. Which one
    came first depends on topic consumption order, so none of them counts (an applied one is
    retracted), the others are dead-lettered with the reason, and a rebuild (another order)
    gives the same tables."""
    day = datetime.now(CITY.zone).date() - timedelta(days=1)
    shared_id = uuid.uuid4()

    def amager(data: p.Payload) -> Envelope:
        return f.wrap(data, local(day, 9), facility="amager", id=shared_id)

    referral = amager(p.ReferralMade(referral_to="housing"))
    other_referral = amager(p.ReferralMade(referral_to="medical_care"))
    seizure = amager(f.incident(local(day, 9), IncidentKind.SEIZURE, facility="amager").data)
    async with serve(projection_app(iso_env.projection())):
        await produce(iso_env.bootstrap, iso_env.topic_prefix, [referral])
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        assert (await day_row(iso_env.dsn, "amager", day))["referrals"] == 1
        await produce(iso_env.bootstrap, iso_env.topic_prefix, [other_referral, seizure])
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
    row = await day_row(iso_env.dsn, "amager", day)
    assert (row.get("referrals", 0), row.get("incidents", 0)) == (0, 0)
    letters = await read_topic(iso_env.bootstrap, iso_env.topic(DEADLETTER))
    reasons = [r.headers.get(REASON_HEADER, b"") for r in letters]
    assert reasons.count(domain.CONFLICT.encode()) == 2, reasons
    await rebuild_equals_live(iso_env)
