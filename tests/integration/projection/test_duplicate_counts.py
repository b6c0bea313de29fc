"""The projector counts, per topic, the events of a batch that were not new
(``dcr_projection_duplicate_events``): a batch whose unique events were all new counts its
in-batch duplicates alone (found while it was prepared), and a batch that repeats events
applied before counts those too. On the real database, through :meth:`Projector.apply_fetched`
(the transaction the running service commits). A resend of an event of the batch before is
counted so too, without failing the next batch's optimistic claim."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from services.projection import store
from services.projection.consumer import Projector
from services.projection.domain import CONFLICT
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


def _fallbacks() -> float:
    return REGISTRY.get_sample_value("dcr_projection_claim_fallbacks_total") or 0.0


async def _projector(pool: asyncpg.Pool, tp: TopicPartition) -> tuple[Projector, _Letters]:
    """A projector owning ``tp`` (stored offset 0) and the dead letters it sends."""
    letters = _Letters()
    p = Projector(pool=pool, city=f.CITY, group="g", kafka=KafkaSettings(), deadletters=letters)
    p.bind(_Consumer())
    await p.assigned([tp])
    return p, letters


def _reported_twice() -> tuple[Envelope, Envelope, Envelope]:
    """A visit start, another report under its id (another booth), and a second visit."""
    event = f.visit_started("v-1", BASE, client=1)
    changed = f.wrap(event.data.model_copy(update={"booth": 9}), event.time, id=event.id)
    return event, changed, f.visit_started("v-2", BASE, client=2)


async def test_a_resend_in_the_next_batch_does_not_fail_its_optimistic_claim(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipelined order (the next batch prepared before this one commits): the resend is
    left out of the next batch's claim, so its plain insert succeeds, and it is counted as a
    duplicate. Without that, the insert meets the stored key and the batch takes the slow
    path (``dcr_projection_claim_fallbacks_total``)."""
    monkeypatch.setattr(store, "OPTIMISTIC_MIN_ROWS", 1)  # the catch-up's path, for 2 events
    visits = [f.visit_started(f"v-{i}", BASE + timedelta(minutes=i), client=i) for i in range(4)]
    tv = TopicPartition(visits[0].topic, 0)
    p, letters = await _projector(pool, tv)
    counted, fallbacks = _counted(tv.topic), _fallbacks()

    first = p._prepare({tv: _fetched(visits[:3], tv, 0)})
    second = p._prepare({tv: _fetched([visits[3], visits[1]], tv, 3)})  # v-1 resent
    assert await p.apply_fetched(first) == 3
    assert await p.apply_fetched(second) == 2

    assert _fallbacks() == fallbacks
    assert _counted(tv.topic) - counted == 1
    assert letters.sent == []
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM projection_events") == 4
        assert await conn.fetchval("SELECT count(*) FROM visits") == 4
        offsets = await conn.fetchval("SELECT next_offset FROM projection_offsets")
    assert offsets == 5


async def test_a_resend_of_a_conflicting_event_is_still_a_conflict(pool: asyncpg.Pool) -> None:
    """An id reported with two different reports in one batch counts for neither; its resend
    in the next batch (left out as a repeat when that batch was prepared) is dead-lettered as
    a conflict too, as the claim decides when the batch before did not apply it."""
    event, changed, other = _reported_twice()
    tv = TopicPartition(event.topic, 0)
    p, letters = await _projector(pool, tv)

    first = p._prepare({tv: _fetched([event, changed], tv, 0)})
    second = p._prepare({tv: _fetched([other, event], tv, 2)})
    assert second.again  # left out when prepared: the batch before had it
    assert await p.apply_fetched(first) == 2
    assert await p.apply_fetched(second) == 2

    assert [(letter.offset, letter.reason) for letter in letters.sent] == [
        (0, CONFLICT),
        (1, CONFLICT),
        (3, CONFLICT),
    ]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM visits") == 1  # v-2 alone


async def test_a_resend_with_another_report_in_the_next_batch_is_a_conflict(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id of an event applied by the batch before, reported again with another report: left
    out of the next batch's claim (its plain insert succeeds), it is decided against the stored
    event: a conflict, so neither counts (the applied one is retracted) and the resend is
    dead-lettered, as when the claim finds it."""
    monkeypatch.setattr(store, "OPTIMISTIC_MIN_ROWS", 1)
    event, changed, other = _reported_twice()
    tv = TopicPartition(event.topic, 0)
    p, letters = await _projector(pool, tv)
    fallbacks = _fallbacks()

    first = p._prepare({tv: _fetched([event], tv, 0)})
    second = p._prepare({tv: _fetched([other, changed], tv, 1)})
    assert await p.apply_fetched(first) == 1
    assert await p.apply_fetched(second) == 2

    assert _fallbacks() == fallbacks
    assert [(letter.offset, letter.reason) for letter in letters.sent] == [(2, CONFLICT)]
    async with pool.acquire() as conn:
        visits = await conn.fetch("SELECT visit_id FROM visits ORDER BY visit_id")
    assert [r["visit_id"] for r in visits] == ["v-2"]  # v-1's start retracted


async def test_a_batch_cut_by_a_rebalance_applies_every_event_it_kept(pool: asyncpg.Pool) -> None:
    """A prefetched batch that lost a partition to a rebalance is prepared again for the
    partitions kept: its events are not repeats of the batch it was cut from (never applied),
    and each of them is applied."""
    start = f.visit_started("v-1", BASE, client=1)
    given = f.dispensed(BASE, {SupplyItem.NEEDLES: 5})
    tv, ts = TopicPartition(start.topic, 0), TopicPartition(given.topic, 0)
    p, letters = await _projector(pool, tv)
    await p.assigned([ts])

    batch = p._prepare({tv: _fetched([start], tv, 0), ts: _fetched([given], ts, 0)})
    await p.revoked([ts])  # a rebalance moved the supplies' partition elsewhere
    assert await p.apply_fetched(batch) == 1

    assert letters.sent == []
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM projection_events") == 1
        assert await conn.fetchval("SELECT count(*) FROM visits") == 1


async def test_a_repeat_of_a_batch_never_applied_is_applied(pool: asyncpg.Pool) -> None:
    """The next batch was prepared leaving out the events the batch before it held, but that
    batch was never applied (dropped: a failure or a rebalance): those events are claimed
    with the rest, and, new, each is applied."""
    visits = [f.visit_started(f"v-{i}", BASE + timedelta(minutes=i), client=i) for i in range(3)]
    tv = TopicPartition(visits[0].topic, 0)
    p, letters = await _projector(pool, tv)

    p._prepare({tv: _fetched(visits[:2], tv, 0)})  # prefetched, then dropped
    again = p._prepare({tv: _fetched(visits, tv, 0)})
    assert len(again.again) == 2
    assert await p.apply_fetched(again) == 3

    assert letters.sent == []
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM projection_events") == 3
        assert await conn.fetchval("SELECT count(*) FROM visits") == 3
        assert await conn.fetchval("SELECT sum(unique_clients) FROM district_daily") == 3


async def test_after_an_assignment_the_records_read_again_are_not_repeats(
    pool: asyncpg.Pool,
) -> None:
    """Partitions (re)assigned are read from their stored offsets: records prepared before
    the rebalance come again, and are claimed as any event, not left out as repeats."""
    visits = [f.visit_started(f"v-{i}", BASE + timedelta(minutes=i), client=i) for i in range(2)]
    tv = TopicPartition(visits[0].topic, 0)
    p, _ = await _projector(pool, tv)

    p._prepare({tv: _fetched(visits, tv, 0)})  # prefetched, dropped by the rebalance
    await p.revoked([tv])
    await p.assigned([tv])
    again = p._prepare({tv: _fetched(visits, tv, 0)})

    assert again.again == []
    assert await p.apply_fetched(again) == 2
