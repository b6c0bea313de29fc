"""Issue 13, retention against the real Kafka and PostgreSQL: after ``make retention``
(``python -m services.projection.retention``) and Kafka's own retention (simulated by deleting
the old records, which the broker would do after the topics' retention.ms), person-level rows of
sealed days are gone, the aggregates of the whole history are unchanged, and a rebuild from what
Kafka still holds reproduces the live tables exactly. An event for a sealed day is
dead-lettered (live and in a rebuild alike)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.admin.records_to_delete import RecordsToDelete

from harness.process import run_module
from services.projection.app import create_app as projection_app
from services.projection.bootstrap import ProjectionConfig
from services.projection.retention import RetentionSettings, topic_retention_ms
from services.projection.store import READ_MODEL_TABLES
from shared.events.envelope import Envelope
from shared.events.vocabulary import IncidentKind, SupplyItem
from shared.kafka.topics import DEADLETTER, VISITS
from tests.integration.projection.harness import (
    end_offsets,
    produce,
    rows,
    snapshot,
    wait_caught_up,
)
from tests.support import read_topic, serve
from tests.unit.projection import factory as f
from tests.unit.projection.factory import CITY

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration
AGGREGATES = ("district_daily", "district_daily_breakdown", "facility_daily")
TABLES = (*READ_MODEL_TABLES, "projection_offsets")


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=CITY.zone)


def day_of_events(day: date, tag: str, first_client: int) -> list[Envelope]:
    return [
        f.visit_started(f"{tag}-1", local(day, 10), client=first_client),
        f.visit_ended(f"{tag}-1", local(day, 10, 40)),
        f.visit_started(f"{tag}-2", local(day, 11), client=first_client + 1, facility="nordvest"),
        f.visit_started(f"{tag}-3", local(day, 22, 30), client=first_client + 2),
        f.visit_ended(f"{tag}-3", local(day + timedelta(days=1), 0, 10)),  # after midnight
        f.referral(local(day, 12)),
        f.sharps(local(day, 13), count=7),
        f.incident(local(day, 14), IncidentKind.SEIZURE, life_threatening=False),
        f.dispensed(local(day, 15), {SupplyItem.SYRINGES: 20}),
    ]


async def forget_old_records(env: TestEnv, before: dict[tuple[str, int], int]) -> None:
    """What the broker does once records are older than retention.ms."""
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    await admin.start()
    try:
        await admin.delete_records(
            {TopicPartition(t, p): RecordsToDelete(n) for (t, p), n in before.items() if n > 0}
        )
    finally:
        await admin.close()


async def test_rebuild_after_retention_equals_live_and_old_person_rows_are_gone(
    iso_env: TestEnv,
) -> None:
    today = datetime.now(CITY.zone).date()
    old, recent = today - timedelta(days=120), today - timedelta(days=3)
    # live: nothing sealed yet (the service's own job keeps 10 years while the log is built)
    keep_all = ProjectionConfig(iso_env.platform(), retention=RetentionSettings(person_days=3650))
    async with serve(projection_app(keep_all)):
        await produce(iso_env.bootstrap, iso_env.topic_prefix, day_of_events(old, "o", 1))
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        old_end = await end_offsets(iso_env.bootstrap, iso_env.topic_prefix)
        await produce(iso_env.bootstrap, iso_env.topic_prefix, day_of_events(recent, "r", 11))
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
    history = await snapshot(iso_env.dsn, AGGREGATES)
    assert {r[1] for r in history["district_daily"]} == {old, recent}

    done = await run_module(
        "services.projection.retention", base=iso_env.env(DCR_RETENTION_PERSON_DAYS="90")
    )
    assert done.code == 0, done.err
    sealed = today - timedelta(days=90)
    assert f"sealed before {sealed}" in done.out
    await forget_old_records(iso_env, old_end)

    # person-level rows of sealed days are gone; aggregates of the whole history are not
    assert await rows(iso_env.dsn, "SELECT visit_id FROM visits WHERE day < $1", sealed) == []
    assert await rows(
        iso_env.dsn, "SELECT count(*) FROM projection_events WHERE time < $1", local(sealed, 0)
    ) == [(0,)]
    assert await snapshot(iso_env.dsn, AGGREGATES) == history
    old_pseudonyms = {f.pseudonym(n) for n in (1, 2, 3)}
    assert not old_pseudonyms & {
        r[0] for r in await rows(iso_env.dsn, "SELECT client_pseudonym FROM visits")
    }
    kafka_values = b"".join(
        r.value or b"" for r in await read_topic(iso_env.bootstrap, iso_env.topic(VISITS))
    )
    assert not any(p.encode() in kafka_values for p in old_pseudonyms)

    live = await snapshot(iso_env.dsn, TABLES)
    rebuilt = await run_module("services.projection.rebuild", base=iso_env.env())
    assert rebuilt.code == 0, rebuilt.err
    assert await snapshot(iso_env.dsn, TABLES) == live

    # an event for a sealed day is dead-lettered; the sealed figures do not move
    seal_90 = ProjectionConfig(iso_env.platform(), retention=RetentionSettings(person_days=90))
    before = len(await read_topic(iso_env.bootstrap, iso_env.topic(DEADLETTER)))
    async with serve(projection_app(seal_90)):
        await produce(iso_env.bootstrap, iso_env.topic_prefix, [f.referral(local(old, 18))])
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
    letters = await read_topic(iso_env.bootstrap, iso_env.topic(DEADLETTER))
    assert len(letters) == before + 1
    assert b"sealed" in b"".join(v for _, v in letters[-1].headers.items())
    assert await snapshot(iso_env.dsn, AGGREGATES) == history


async def test_retention_sets_the_topics_retention(iso_env: TestEnv) -> None:
    done = await run_module("services.projection.retention", base=iso_env.env())
    assert done.code == 0, done.err
    admin = AIOKafkaAdminClient(bootstrap_servers=iso_env.bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, iso_env.topic(t))
                for t in (VISITS, DEADLETTER)
            ]
        )
    finally:
        await admin.close()
    want = topic_retention_ms(RetentionSettings())
    got = {
        name.removeprefix(iso_env.topic_prefix): {c[0]: c[1] for c in configs}
        for _err, _msg, _kind, name, configs in response.resources
    }
    assert got[VISITS]["retention.ms"] == str(want[VISITS]) == str(92 * 86_400_000)
    assert got[DEADLETTER]["retention.ms"] == str(30 * 86_400_000)
    assert got[VISITS]["min.insync.replicas"] == "1"


async def test_make_retention_enforces_the_log_schedule(iso_env: TestEnv, tmp_path: Path) -> None:
    """``make retention``'s module rotates the active logs and deletes those past the schedule."""
    now = datetime.now(UTC)
    old = tmp_path / "intake.log.old"
    old.write_text("a line older than the schedule\n")
    stale = (now - timedelta(days=31)).timestamp()
    os.utime(old, (stale, stale))
    (tmp_path / "projection.log").write_text("a recent line\n")

    done = await run_module(
        "services.projection.retention",
        "--no-topics",
        base=iso_env.env(DCR_RETENTION_LOG_DIR=str(tmp_path)),
    )
    assert done.code == 0, done.err
    assert "deleted ['intake.log.old']" in done.out
    stamps = {f"projection.log.{t:%Y%m%d}" for t in (now, datetime.now(UTC))}  # maybe midnight
    left = sorted(os.listdir(tmp_path))
    assert left[0] == "projection.log" and left[1] in stamps and len(left) == 2
    assert (tmp_path / left[1]).read_text() == "a recent line\n"
    assert (tmp_path / "projection.log").read_text() == ""


async def test_retention_recomputes_pending_figures_before_it_seals_their_days(
    iso_env: TestEnv,
) -> None:
    """Figures a catch-up left pending (``visit_figures_pending``) for a day about to be sealed
    are recomputed from its visits before they are deleted; otherwise they would stay wrong for
    ever (a sealed day's aggregates are final)."""
    old = datetime.now(CITY.zone).date() - timedelta(days=120)
    keep_all = ProjectionConfig(iso_env.platform(), retention=RetentionSettings(person_days=3650))
    async with serve(projection_app(keep_all)):
        await produce(iso_env.bootstrap, iso_env.topic_prefix, day_of_events(old, "p", 21))
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
    history = await snapshot(iso_env.dsn, AGGREGATES)
    # as a catch-up leaves them: the day's visit figures not yet recomputed, their keys pending
    await rows(
        iso_env.dsn,
        """WITH p AS (INSERT INTO visit_figures_pending
                      SELECT DISTINCT district, day, facility FROM visits WHERE day = $1),
                s AS (UPDATE district_daily SET unique_clients = unique_clients + 100
                      WHERE day = $1)
           UPDATE facility_daily SET visits = visits + 100 WHERE day = $1""",
        old,
    )
    assert await snapshot(iso_env.dsn, AGGREGATES) != history

    done = await run_module(
        "services.projection.retention", base=iso_env.env(DCR_RETENTION_PERSON_DAYS="90")
    )
    assert done.code == 0, done.err
    assert await rows(iso_env.dsn, "SELECT * FROM visit_figures_pending") == []
    assert await rows(iso_env.dsn, "SELECT visit_id FROM visits WHERE day = $1", old) == []
    assert await snapshot(iso_env.dsn, AGGREGATES) == history
