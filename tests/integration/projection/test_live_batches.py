"""A projector behind (a backlog, a catch-up) prepares the next batches while one is applied; a
projector caught up fetches its next batch only once the one before is applied, so the records
that arrived meanwhile are applied together, instead of a few at a time in batches fetched
early and queued behind it (bench/NOTES.md: freshness at 200 reports/s). On the real Kafka and
PostgreSQL, through :meth:`Projector.run` with an aiokafka consumer, as the service runs it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.projection.consumer import Prepared, Projector
from services.projection.runner import make_consumer
from services.projection.settings import ProjectionSettings
from shared.kafka.deadletter import DeadLetter
from shared.kafka.topics import EVENT_TOPICS
from tests.integration.projection.harness import GROUP, applied_records, end_offsets, produce
from tests.support import TestEnv, poll_until
from tests.unit.projection import factory as f

pytestmark = pytest.mark.integration

#: The most records one fetch brings here: a backlog of many times this keeps the projector
#: behind (every fetch full).
MAX_RECORDS = 50


class _Letters:
    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Nothing is rejected here (valid events only)."""


class _Timeline:
    """When each of the projector's fetches and transactions ran (monotonic start, end)."""

    def __init__(self, p: Projector, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fetches: list[tuple[float, float]] = []
        self.applies: list[tuple[float, float]] = []
        fetch, apply_fetched = p.fetch, p.apply_fetched

        async def timed_fetch(timeout_ms: int, max_records: int) -> Prepared | None:
            started = time.monotonic()
            try:
                return await fetch(timeout_ms, max_records)
            finally:
                self.fetches.append((started, time.monotonic()))

        async def timed_apply(prepared: Prepared | None) -> int:
            started = time.monotonic()
            try:
                return await apply_fetched(prepared)
            finally:
                if prepared is not None:
                    self.applies.append((started, time.monotonic()))

        monkeypatch.setattr(p, "fetch", timed_fetch)
        monkeypatch.setattr(p, "apply_fetched", timed_apply)

    def fetched_while_applying(self) -> int:
        """How many fetches ran, at least in part, while a batch was applied."""
        return sum(
            1 for fs, fe in self.fetches if any(fs < ae and as_ < fe for as_, ae in self.applies)
        )


@pytest.fixture
async def running(
    iso_env: TestEnv, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Projector, _Timeline]]:
    """A projector running as the service runs it, on every event partition of the test's
    topics (assigned by hand), its fetches and transactions timed."""
    pool = await asyncpg.create_pool(iso_env.dsn, min_size=1, max_size=2)
    kafka = iso_env.platform().kafka
    kafka_consumer: AIOKafkaConsumer = make_consumer(kafka, ProjectionSettings(), group=False)
    await kafka_consumer.start()
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        tps = [
            TopicPartition(t, p)
            for t, p in await end_offsets(iso_env.bootstrap, kafka.topic_prefix)
        ]
        assert {tp.topic for tp in tps} == {kafka.topic(t) for t in EVENT_TOPICS}
        p = Projector(pool=pool, city=f.CITY, group=GROUP, kafka=kafka, deadletters=_Letters())
        p.bind(kafka_consumer)
        kafka_consumer.assign(tps)
        await p.assigned(tps)
        timeline = _Timeline(p, monkeypatch)
        task = asyncio.create_task(
            p.run(stop, poll_timeout_ms=100, max_records=MAX_RECORDS, backoff_s=0.1)
        )
        yield p, timeline
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, timeout=30)
        await kafka_consumer.stop()
        await pool.close()


async def _applied(dsn: str, n: int) -> None:
    async def reached() -> bool:
        return await applied_records(dsn) >= n

    await poll_until(reached, timeout=60, interval=0.05, what=f"{n} records applied")


async def test_behind_the_next_batches_are_fetched_while_one_is_applied(
    iso_env: TestEnv, running: tuple[Projector, _Timeline]
) -> None:
    _, timeline = running
    events = f.random_stream(seed=41, n=1200, base=datetime.now(UTC))
    n = await produce(iso_env.bootstrap, iso_env.topic_prefix, events)

    await _applied(iso_env.dsn, n)

    assert len(timeline.applies) >= n // MAX_RECORDS  # full batches
    assert timeline.fetched_while_applying() >= len(timeline.applies) // 2


async def test_caught_up_the_next_batch_is_fetched_once_the_one_before_is_applied(
    iso_env: TestEnv, running: tuple[Projector, _Timeline]
) -> None:
    _, timeline = running
    events = f.random_stream(seed=43, n=60, base=datetime.now(UTC))
    assert len(events) > 30
    produced = 0
    for i in range(0, len(events), 3):  # reports arriving a few at a time, as rooms post them
        produced += await produce(iso_env.bootstrap, iso_env.topic_prefix, events[i : i + 3])
        await _applied(iso_env.dsn, produced)

    assert len(timeline.applies) >= len(events) // 3 // 2
    assert timeline.fetched_while_applying() == 0
