"""The projector counts, per topic, the events of a batch that were not new
(``dcr_projection_duplicate_events``): a batch whose unique events were all new counts its
in-batch duplicates alone (found while it was prepared), and a batch that repeats events
applied before counts those too. On the real database, through :meth:`Projector.apply_fetched`
(the transaction the running service commits)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from services.projection.consumer import Projector
from shared.events.envelope import Envelope, to_headers, to_value
from shared.events.vocabulary import SupplyItem
from shared.kafka.deadletter import DeadLetter
from shared.settings import KafkaSettings
from tests.support import TestEnv
from tests.unit.projection import factory as f

pytestmark = pytest.mark.integration

BASE = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


class _Consumer:
    """What the projector asks of its Kafka consumer here: where logs begin, how far they go
    (unknown: no deferral), and where to read from (recorded)."""

    def __init__(self) -> None:
        self.seeks: list[tuple[TopicPartition, int]] = []

    async def beginning_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 0)

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


class _Letters:
    def __init__(self) -> None:
        self.sent: list[DeadLetter] = []

    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        self.sent += letters


@pytest.fixture
async def pool(iso_env: TestEnv) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(iso_env.dsn, min_size=1, max_size=2)
    try:
        yield p
    finally:
        await p.close()


def _fetched(envs: Sequence[Envelope], tp: TopicPartition, first: int) -> list[ConsumerRecord]:
    """The records as aiokafka's fetcher hands them over, at offsets ``first``..."""
    out = []
    for i, env in enumerate(envs):
        value = to_value(env)
        headers = tuple((k, v.encode()) for k, v in to_headers(env).items())
        out.append(
            ConsumerRecord(
                tp.topic, tp.partition, first + i, 1_700_000_000_000 + i, 0, None, value,
                None, -1, len(value), headers,
            )
        )  # fmt: skip
    return out


def _counted(topic: str) -> float:
    n = REGISTRY.get_sample_value("dcr_projection_duplicate_events_total", {"topic": topic})
    return n or 0.0


async def test_not_new_events_are_counted_per_topic(pool: asyncpg.Pool) -> None:
    visits = [f.visit_started(f"v-{i}", BASE + timedelta(minutes=i), client=i) for i in range(4)]
    supplies = [f.dispensed(BASE + timedelta(minutes=i), {SupplyItem.NEEDLES: 1}) for i in range(3)]
    tv, ts = TopicPartition(visits[0].topic, 0), TopicPartition(supplies[0].topic, 0)
    assert tv.topic != ts.topic
    letters = _Letters()
    p = Projector(pool=pool, city=f.CITY, group="g", kafka=KafkaSettings(), deadletters=letters)
    kafka = _Consumer()
    p.bind(kafka)
    await p.assigned([tv, ts])
    assert sorted(kafka.seeks) == sorted([(tv, 0), (ts, 0)])  # the stored offsets: the start
    before = {t: _counted(t) for t in (tv.topic, ts.topic)}

    # all new, with in-batch duplicates: two of one visit start, three of one supply
    first = {
        tv: _fetched([*visits[:3], visits[1], visits[1]], tv, 0),
        ts: _fetched([supplies[0], supplies[0], supplies[1]], ts, 0),
    }
    assert await p.apply_fetched(p._prepare(first)) == 8

    assert _counted(tv.topic) - before[tv.topic] == 2
    assert _counted(ts.topic) - before[ts.topic] == 1

    # a batch repeating applied events (a retry after a lost commit) beside new ones and an
    # in-batch duplicate: each not-new event counts once, on its own topic
    second = {
        tv: _fetched([visits[0], visits[3], visits[3]], tv, 5),
        ts: _fetched([supplies[1], supplies[0], supplies[2]], ts, 3),
    }
    assert await p.apply_fetched(p._prepare(second)) == 6

    assert _counted(tv.topic) - before[tv.topic] == 2 + 2  # v-0 again, v-3 twice in the batch
    assert _counted(ts.topic) - before[ts.topic] == 1 + 2  # both applied before
    assert letters.sent == []
    assert len(kafka.seeks) == 2  # every record continued at the stored offsets
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM projection_events") == 4 + 3
        stored = await conn.fetch("SELECT topic, next_offset FROM projection_offsets")
    assert {r["topic"]: r["next_offset"] for r in stored} == {tv.topic: 8, ts.topic: 6}
