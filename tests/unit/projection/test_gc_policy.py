"""The projection's collection policy (:mod:`services.projection.gc_policy`): a catch-up batch
triggers no collection of the youngest generation (its objects die by reference counting before
the threshold is reached), and reference cycles are still collected, by time."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest
from aiokafka.structs import ConsumerRecord

from bench.decode import records
from bench.env import bench_city
from harness.poll import poll_until
from services.projection import domain, store
from services.projection.consumer import PREFETCH_DEPTH
from services.projection.gc_policy import GC_YOUNG_THRESHOLD, collect_garbage_every
from services.projection.rooms import room_changes
from services.projection.settings import ProjectionSettings

SAMPLE = 5_000


@pytest.fixture
def collector_quiet() -> Iterator[None]:
    """The youngest generation's threshold out of reach while the test counts (restored after)."""
    before = gc.get_threshold()
    gc.collect()
    gc.set_threshold(10**9, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _as_fetched(headers: list[tuple[str, bytes]], value: bytes, offset: int) -> ConsumerRecord:
    """A record as aiokafka's fetcher hands it over: its own header tuples, in a tuple."""
    return ConsumerRecord(
        "t", 0, offset, 0, 0, None, value, None, -1, len(value), tuple((k, v) for k, v in headers)
    )


@pytest.mark.usefixtures("collector_quiet")
def test_the_batches_in_flight_stay_below_the_young_threshold() -> None:
    """What the pipelined loop keeps alive at once (the batch being applied and the
    :data:`PREFETCH_DEPTH` next ones being prepared: records, decoded events, changes, claim
    arguments, room changes), counted in tracked objects per event and scaled to that many of
    the largest default batches, is below the threshold: no collection runs because of them."""
    city = bench_city(50)
    encoded = [(list(h), v) for h, v in records(SAMPLE)]
    kept = []
    before = gc.get_count()[0]
    fetched = [_as_fetched(h, v, i) for i, (h, v) in enumerate(encoded)]
    decoded, _ = domain.decode_batch(fetched, city)
    unique = domain.first_occurrences(decoded)
    changes = domain.project_decoded(unique, city)
    kept += [fetched, decoded, unique, changes, store.claim_arguments(unique)]
    kept += [room_changes(unique), store.visit_arguments(changes)]
    per_event = (gc.get_count()[0] - before) / SAMPLE
    batch = ProjectionSettings().batch_max_records
    assert per_event > 5  # the count saw the batch's objects (a record alone makes ~10)
    assert (1 + PREFETCH_DEPTH) * batch * per_event < GC_YOUNG_THRESHOLD, per_event
    assert kept


async def test_a_reference_cycle_is_collected_by_time_alone(collector_quiet: None) -> None:
    """With the threshold out of reach, a cycle lives until the timed full collection."""

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    assert gone() is not None  # reference counting alone cannot free a cycle
    pacer = asyncio.create_task(collect_garbage_every(0.05))
    try:
        await poll_until(lambda: _collected(gone), timeout=10, what="the cycle to be collected")
    finally:
        pacer.cancel()
        await asyncio.wait({pacer})


async def _collected(ref: weakref.ref[object]) -> bool:
    return ref() is None
