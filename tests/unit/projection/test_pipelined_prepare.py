"""The pipelined loop prepares a batch in slices (yielding to the event loop between them, so
the transaction in flight is answered promptly): the result must equal preparing it at once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import TopicPartition

from services.projection import consumer, domain, store
from services.projection import read_model_sql as sql
from services.projection.rooms import RoomChanges, room_changes
from services.projection.steps import finish
from shared.events import envelope
from shared.events.envelope import to_value
from tests.unit.projection import factory as f

BASE = datetime(2026, 10, 26, 12, 0, tzinfo=UTC)  # the stream spans the DST change before it


_projector = f.offline_projector


@pytest.mark.parametrize("slice_size", [1, 7, 1000])
async def test_sliced_preparation_equals_preparing_at_once(
    slice_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = f.random_stream(seed=3, n=600, base=BASE)
    assert len({e.id for e in events}) < len(events)  # it has duplicates
    by_tp: dict[TopicPartition, list[f.RawRecord]] = {}
    for offset, env in enumerate(events):
        tp = TopicPartition(env.topic, offset % 3)
        by_tp.setdefault(tp, []).append(f.record(env, offset, partition=tp.partition))
    bad = f.record(events[0], 10_000, value=b"{not json")  # rejected in both
    by_tp.setdefault(TopicPartition(events[0].topic, 0), []).append(bad)
    monkeypatch.setattr(consumer, "PREPARE_SLICE", slice_size)

    # two projectors: one that prepared the batch before would leave its repeats out
    at_once = _projector()._prepare(by_tp)  # type: ignore[arg-type]
    sliced = await _projector()._prepare_yielding(by_tp)  # type: ignore[arg-type]

    assert [d.record for d in sliced.decoded] == [d.record for d in at_once.decoded]
    assert [(r.record, r.reason) for r in sliced.rejected] == [
        (r.record, r.reason) for r in at_once.rejected
    ]
    assert [d.record for d in sliced.unique] == [d.record for d in at_once.unique]
    assert len(sliced.unique) < len(sliced.decoded)
    assert sliced.changes == at_once.changes
    assert sliced.changes.visit_starts and sliced.changes.daily  # a real mix was projected
    # what the transaction sends when all are new: built in slices too, the same
    assert sliced.claim == at_once.claim
    assert sliced.claim.keys == {d.dedup_key for d in at_once.unique}
    assert sliced.rooms == at_once.rooms
    assert sliced.writes.additive == at_once.writes.additive
    assert sliced.writes.visits == at_once.writes.visits
    assert sliced.writes.changes is sliced.changes  # used by apply_changes for these only
    assert sliced.repeats == at_once.repeats


async def test_a_batch_checks_its_repeated_headers_once_across_its_slices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Work budget (speed only): the slices of one batch share one decoder, so each distinct
    set of repeated headers (type, source, versions) is checked once per batch, not per slice."""
    events = f.random_stream(seed=3, n=600, base=BASE)
    records = [f.record(env, offset) for offset, env in enumerate(events)]
    repeated = [tuple(h for h in r.headers if h[0] not in ("ce_id", "ce_time")) for r in records]
    distinct = set(repeated)
    per_slice = sum(len(set(repeated[i : i + 50])) for i in range(0, len(records), 50))
    checked = 0
    real = envelope._checked_repeated

    def counted(repeated: Any) -> Any:
        nonlocal checked
        checked += 1
        return real(repeated)

    monkeypatch.setattr(envelope, "_checked_repeated", counted)
    monkeypatch.setattr(consumer, "PREPARE_SLICE", 50)

    await _projector()._prepare_yielding({TopicPartition("t", 0): records})  # type: ignore[dict-item]

    assert checked == len(distinct) < per_slice  # a decoder per slice would check more


async def test_a_start_whose_end_came_in_an_earlier_batch_is_upserted_not_inserted_plainly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The projector remembers the visit rows its batches make from an end alone: a later
    batch's start of such a visit is sent among those that may meet a stored row (upserted),
    every other start among the fresh ones (inserted plainly, store._visits); once its start is
    written the row is forgotten; the end of a visit the batch before started is not
    remembered; past the limit the older ones are forgotten."""
    tp = TopicPartition("dcr.visits", 0)
    p = _projector()
    p._prepare({tp: [f.record(f.visit_ended("v-x", BASE), 0)]})  # type: ignore[dict-item]
    starts = [f.visit_started("v-y", BASE), f.visit_started("v-x", BASE - timedelta(minutes=5))]

    second = await p._prepare_yielding({tp: [f.record(e, 1 + i) for i, e in enumerate(starts)]})  # type: ignore[dict-item]

    visits = second.writes.visits
    assert visits is not None and visits.may_exist == 1
    assert [r[1] for r in json.loads(visits.starts)] == ["v-x", "v-y"]  # held first (visit_id)
    assert visits.paired_ends == [None, None]
    assert p._rows_without_start == set()  # its start is written now

    # the end of a visit started in the batch before: its row has a start, nothing to remember
    p._prepare({tp: [f.record(f.visit_ended("v-y", BASE), 3)]})  # type: ignore[dict-item]
    assert p._rows_without_start == set()

    monkeypatch.setattr(consumer, "ROWS_WITHOUT_START_LIMIT", 2)
    ends = [f.visit_ended(f"v-{i}", BASE) for i in range(3)]
    p._prepare({tp: [f.record(e, 10 + i) for i, e in enumerate(ends[:2])]})  # type: ignore[dict-item]
    assert p._rows_without_start == {("halmtorv", "v-0"), ("halmtorv", "v-1")}
    p._prepare({tp: [f.record(ends[2], 12)]})  # type: ignore[dict-item]
    assert p._rows_without_start == {("halmtorv", "v-2")}  # over the limit: the older forgotten


class _Buffered:
    """A consumer whose fetched records are all buffered: ``getmany`` hands out the next ones
    of each partition, at most ``max_records`` in all (aiokafka's contract), and records every
    call."""

    def __init__(self, by_tp: dict[TopicPartition, list[f.RawRecord]]) -> None:
        self.left = {tp: list(rs) for tp, rs in by_tp.items()}
        self.calls: list[tuple[int, int]] = []

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[f.RawRecord]]:
        self.calls.append((timeout_ms, max_records))
        out: dict[TopicPartition, list[f.RawRecord]] = {}
        for tp, rs in self.left.items():
            room = max_records - sum(map(len, out.values()))
            if room and rs:
                out[tp], self.left[tp] = rs[:room], rs[room:]
        return out


def _partitioned(n: int, partitions: int = 3) -> dict[TopicPartition, list[f.RawRecord]]:
    by_tp: dict[TopicPartition, list[f.RawRecord]] = {}
    for offset, env in enumerate(f.random_stream(seed=7, n=n, base=BASE)):
        tp = TopicPartition(env.topic, offset % partitions)
        by_tp.setdefault(tp, []).append(
            f.record(env, len(by_tp.get(tp, ())), partition=tp.partition)
        )
    return by_tp


@pytest.mark.parametrize(("fetch_slice", "max_records"), [(7, 1000), (7, 100), (1000, 50)])
async def test_a_batch_is_taken_in_slices_in_log_order(
    fetch_slice: int, max_records: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The records of one fetch are taken a slice at a time (the event loop runs between the
    takes): together they are what one getmany would have returned, per partition in order."""
    by_tp = _partitioned(300)
    monkeypatch.setattr(consumer, "FETCH_SLICE", fetch_slice)
    p = _projector()
    fake = _Buffered(by_tp)
    p._consumer = fake  # type: ignore[assignment]

    taken = await p._take(500, max_records)

    assert sum(map(len, taken.values())) == min(max_records, 300)
    for tp, rs in taken.items():
        assert rs == by_tp[tp][: len(rs)]  # the partition's first records, in order
    assert fake.calls[0] == (500, min(fetch_slice, max_records))  # waits for the first only
    assert all(timeout == 0 and n <= fetch_slice for timeout, n in fake.calls[1:])


async def test_taking_stops_when_a_partition_no_longer_continues() -> None:
    """A rebalance between two takes may re-position a partition: its records that do not
    continue the ones taken are left out and taking stops (the next batch seeks back)."""
    by_tp = _partitioned(100, partitions=1)
    tp = max(by_tp, key=lambda t: len(by_tp[t]))
    rs = by_tp[tp]
    assert len(rs) >= 15
    got: dict[TopicPartition, list[f.RawRecord]] = {tp: rs[:10]}

    assert consumer._merge(got, {tp: rs[10:15]}) == 5
    assert consumer._merge(got, {tp: rs[3:8]}) == -1  # sought back: left out
    assert got[tp] == rs[:15]


async def test_an_applied_batch_is_released_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    by_tp = _partitioned(120)
    monkeypatch.setattr(consumer, "RELEASE_SLICE", 25)
    p = _projector()
    batch = p._prepare(by_tp)  # type: ignore[arg-type]
    yields = 0
    sleep = asyncio.sleep

    async def counted(delay: float) -> None:
        nonlocal yields
        yields += 1
        await sleep(delay)  # only yield: the real sleep(0), counted

    monkeypatch.setattr(consumer.asyncio, "sleep", counted)
    await consumer._release(batch)

    assert not batch.decoded and not batch.unique
    assert all(not rs for rs in batch.by_tp.values())
    assert yields >= 120 * 2 // 25  # the events, then the records, 25 at a time


async def test_claim_arguments_carry_each_value_exactly() -> None:
    """The claim's rows say where each event's value starts in the one bytea and its length:
    slicing the bytea there gives back every record's value, byte for byte."""
    events = f.random_stream(seed=5, n=200, base=BASE)
    decoded, rejected = domain.decode_batch([f.record(e, i) for i, e in enumerate(events)], f.CITY)
    assert rejected == []
    unique = domain.first_occurrences(decoded)

    claim = store.claim_arguments(unique)

    rows = json.loads(claim.rows)
    by_key = {d.dedup_key: d for d in unique}
    # in the order of projection_events' key, (id, source)
    assert [(r[1], r[0]) for r in rows] == sorted((i, s) for s, i in by_key)
    assert len(claim.values) == sum(len(d.record.value or b"") for d in unique)
    for source, event_id, event_type, _, start, length, version, _ in rows:
        d = by_key[(source, event_id)]
        assert claim.values[start - 1 : start - 1 + length] == d.record.value
        assert event_type == d.event.type
        assert version == int(dict(d.record.headers).get("ce_schemaversion", b"1"))
    # built in steps of any size: the same arguments
    for step in (1, 7, 1000):
        assert finish(store.claim_argument_steps(unique, step)) == claim


@pytest.mark.parametrize("step", [1, 2, 7, 1000])
def test_arguments_encoded_in_steps_equal_those_encoded_at_once(step: int) -> None:
    """The JSON documents the statements receive are the same text whether encoded at once or
    a slice at a time (the projector yields to its event loop between slices), for any slice
    size and for no rows at all; so are the visit and change arguments built in steps."""
    events = f.random_stream(seed=11, n=400, base=BASE)
    decoded, _ = domain.decode_batch([f.record(e, i) for i, e in enumerate(events)], f.CITY)
    changes = domain.project_decoded(domain.first_occurrences(decoded), f.CITY)
    starts = list(changes.visit_starts.values())
    assert len(starts) > 2 * step or step == 1000

    for rows in ([], starts[:1], starts):
        text = finish(store.json_steps(rows, step, sql.VISIT_START_RECORD))
        assert text == store.records_json(rows, sql.VISIT_START_RECORD)
        plain = [[r.facility, r.visit_id] for r in rows]
        assert finish(store.json_steps(plain, step)) == store.rows_json(plain)
    assert finish(store.visit_argument_steps(changes, None, step)) == store.visit_arguments(changes)
    stepped = finish(store.change_argument_steps(changes, frozenset(), step))
    at_once = store.change_arguments(changes, frozenset())
    assert (stepped.additive, stepped.visits) == (at_once.additive, at_once.visits)


def test_room_changes_of_slices_added_in_turn_equal_those_of_the_whole() -> None:
    events = f.random_stream(seed=12, n=400, base=BASE)
    decoded, _ = domain.decode_batch([f.record(e, i) for i, e in enumerate(events)], f.CITY)
    unique = domain.first_occurrences(decoded)
    whole = room_changes(unique)
    assert whole.room  # a real mix

    rooms = RoomChanges()
    for i in range(0, len(unique), 9):
        assert room_changes(unique[i : i + 9], into=rooms) is rooms
    assert rooms == whole


def test_the_claim_keeps_the_schema_version_the_event_was_decoded_at() -> None:
    """A record naming its schema version twice is decoded at the last one (the decoder reads
    headers as a mapping); the claim stores that version beside the value, so the stored event
    decodes back to the very event applied (a void arriving later retracts exactly it)."""
    env = f.visit_started("v-legacy", BASE, client=3)
    legacy = {k: v for k, v in json.loads(to_value(env)).items() if k != "pseudonym_key"}
    headers = (*f.record(env).headers, ("ce_schemaversion", b"1"))  # v2, then v1: v1 holds
    value = json.dumps(legacy).encode()
    decoded, rejected = domain.decode_batch([f.record(env, headers=headers, value=value)], f.CITY)
    assert rejected == []

    [row] = json.loads(store.claim_arguments(decoded).rows)

    assert row[6] == 1
    stored = {
        "id": row[1], "source": row[0], "type": row[2], "time": decoded[0].event.time,
        "value": value, "schema_version": row[6],
    }  # fmt: skip
    assert domain.same_event(store._stored_event(stored), decoded[0].event)  # type: ignore[arg-type]


class _SeekRecorder:
    """The consumer as run() sees it after a fetch: only where it is sought matters here."""

    def __init__(self) -> None:
        self.seeks: list[tuple[TopicPartition, int]] = []

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


async def test_a_halted_loop_seeks_back_over_the_dropped_prefetch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """run() halted (e.g. the rebuild-lock session was lost) while the batches after N were
    prefetched: those records were fetched but never applied, so the consumer must be sought
    back to the stored offsets, or the next run() on it skips them (a stall until the
    partition receives more records)."""
    tp = TopicPartition("dcr.visits", 0)
    p = _projector()
    recorder = _SeekRecorder()
    p.bind(recorder)
    p._next[tp] = 42  # the stored offset: the next record to apply
    halt = asyncio.Event()
    fetched: list[int] = []
    prefetched = asyncio.Event()

    async def fetch(timeout_ms: int, max_records: int) -> object:
        fetched.append(len(fetched))
        if len(fetched) == 1 + consumer.PREFETCH_DEPTH:
            prefetched.set()
        return object()  # a batch was fetched (the consumer moved past it)

    async def apply_fetched(prepared: object) -> int:
        await prefetched.wait()  # the next batches are fetched while batch N's transaction runs
        halt.set()  # the lock session is lost while batch N is applied
        return 1

    monkeypatch.setattr(p, "fetch", fetch)
    monkeypatch.setattr(p, "apply_fetched", apply_fetched)

    await p.run(halt, poll_timeout_ms=10, max_records=10, backoff_s=0.01)

    assert len(fetched) == 1 + consumer.PREFETCH_DEPTH  # N applied, the next ones dropped
    assert recorder.seeks == [(tp, 42)]


async def _keep(batch: object) -> None:
    """:func:`consumer._release` for the fakes' batches (numbers: nothing to free)."""


class _Pipeline:
    """Fakes of :meth:`Projector.fetch` and :meth:`Projector.apply_fetched` for run(): batches
    are numbered in fetch order; it records which were applied, how many fetches ran at once,
    and whether a transaction waited in vain for the batches after it to be prepared."""

    def __init__(self, stop: asyncio.Event, apply_until: int, fail: int | None = None) -> None:
        self.stop, self.apply_until, self.fail = stop, apply_until, fail
        self.fetched = 0
        self.running = self.most_at_once = 0
        self.applied: list[int] = []
        self.stalled = False

    async def fetch(self, timeout_ms: int, max_records: int) -> int:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        # a fetch yields to the loop (getmany, prepare slices): only yield, twice
        await asyncio.sleep(0)  # only yield
        await asyncio.sleep(0)  # only yield
        self.running -= 1
        self.fetched += 1
        return self.fetched - 1

    async def apply_fetched(self, batch: int) -> int:
        deadline = asyncio.get_running_loop().time() + 2
        while self.fetched < batch + 1 + consumer.PREFETCH_DEPTH:  # the transaction runs
            if asyncio.get_running_loop().time() > deadline:
                self.stalled = True  # the batches after this one were not being prepared
                break
            await asyncio.sleep(0)  # polling interval: a bare yield, under the deadline above
        if batch == self.fail:
            self.fail = None
            raise OSError("connection lost")  # the transaction failed: retried
        self.applied.append(batch)
        if len(self.applied) == self.apply_until:
            self.stop.set()
        return 1


async def test_the_next_batches_are_prepared_one_after_another_while_one_is_applied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While batch N's transaction runs, batches N+1 .. N+PREFETCH_DEPTH are fetched and
    prepared (Python keeps working through a long transaction), never two fetches at once
    (batches follow one another in offset order), and batches are applied in fetch order."""
    assert consumer.PREFETCH_DEPTH >= 2
    p = _projector()
    p.bind(_SeekRecorder())
    stop = asyncio.Event()
    fake = _Pipeline(stop, apply_until=6)
    monkeypatch.setattr(p, "fetch", fake.fetch)
    monkeypatch.setattr(p, "apply_fetched", fake.apply_fetched)
    monkeypatch.setattr(consumer, "_release", _keep)

    await asyncio.wait_for(p.run(stop, poll_timeout_ms=10, max_records=10, backoff_s=0), 10)

    assert fake.applied == [0, 1, 2, 3, 4, 5]
    assert not fake.stalled
    assert fake.most_at_once == 1


async def test_a_failed_batch_drops_every_prefetch_and_resumes_at_the_stored_offsets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch's transaction failed: every batch prefetched after it is dropped (none applied),
    the consumer is sought back to the stored offsets, and the loop goes on with fresh
    fetches (in the real loop those bring the failed batch's records again)."""
    tp = TopicPartition("dcr.visits", 0)
    p = _projector()
    recorder = _SeekRecorder()
    p.bind(recorder)
    p._next[tp] = 7
    stop = asyncio.Event()
    fake = _Pipeline(stop, apply_until=3, fail=1)
    monkeypatch.setattr(p, "fetch", fake.fetch)
    monkeypatch.setattr(p, "apply_fetched", fake.apply_fetched)
    monkeypatch.setattr(consumer, "_release", _keep)

    await asyncio.wait_for(p.run(stop, poll_timeout_ms=10, max_records=10, backoff_s=0), 10)

    dropped = 1 + consumer.PREFETCH_DEPTH  # the failed batch's prefetches: 2 .. 1 + DEPTH
    assert fake.applied == [0, dropped + 1, dropped + 2]  # none of the dropped ones applied
    assert recorder.seeks[0] == (tp, 7)  # rewound after the failure
    assert not fake.stalled
    assert fake.most_at_once == 1
