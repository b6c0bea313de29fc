"""The projection's garbage-collection policy: collections paced by time, not by a batch's
allocations.

A catch-up batch (up to 50,000 events) keeps a few hundred thousand container objects alive
until its transaction commits (records, their header tuples, decoded events, changes), three
batches at a time (the next two are prepared while the current one is applied), and almost none of
them are in reference cycles: reference counting frees them. CPython's collector, though, runs
its youngest generation every ``threshold`` net new objects and traverses every live young
object each time: at 50,000 that was 285 young and 13 older collections per 1M-event replay,
~6 us of CPU per event, ~13 % of the projection's Python (``python -m bench.profile_catchup
--gc-young``, bench/results/issue18/s9/).

Invariants: the youngest generation's threshold (:data:`GC_YOUNG_THRESHOLD`) is above the objects
three in-flight batches keep alive, so a batch triggers no collection; cycles are still collected,
by a full collection at most :data:`GC_FULL_EVERY_S` seconds apart
(:func:`collect_garbage_every`, run beside every :meth:`.consumer.Projector.run`), and by the
threshold should live objects ever pass it. Pure policy: imports no I/O library.
"""

from __future__ import annotations

import asyncio
import gc

#: Net new tracked objects between two collections of the youngest generation (CPython's
#: default: 700). Above what three in-flight batches of 50,000 events keep alive
#: (:data:`.consumer.PREFETCH_DEPTH` ahead of the one applied): no collection at all in a
#: 1M-event replay at this value. At 2,000,000 (two in flight, bench/results/issue18/s9/), three
#: passed it once per replay: a 0.4 s pause of the event loop (bench/results/issue18/s16/).
GC_YOUNG_THRESHOLD = 3_000_000
#: The longest a reference cycle stays uncollected while a projector runs.
GC_FULL_EVERY_S = 60.0


def tune_gc(young_threshold: int = GC_YOUNG_THRESHOLD) -> None:
    """For a process that catches up: objects allocated at start-up leave the collector's view
    (``gc.freeze``) and the youngest generation is collected only past ``young_threshold``
    (another value than :data:`GC_YOUNG_THRESHOLD` only to compare policies in a benchmark).
    Called once by a composition root, after start-up."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, 20, 50)


async def collect_garbage_every(seconds: float = GC_FULL_EVERY_S) -> None:
    """Run a full collection every ``seconds`` until cancelled (the event loop pauses for it:
    a traversal of the live objects, 0.34 s measured during a 1M-event catch-up, once a minute
    by default)."""
    while True:
        await asyncio.sleep(seconds)  # pacing: a collection per period, not a wait on an event
        gc.collect()
