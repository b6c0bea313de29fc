"""The consume loop: Kafka batches -> one PostgreSQL transaction each (exactly once in effect).

Invariants:

* Offsets live in PostgreSQL (``projection_offsets``), written in the same transaction as the
  read-model changes of the records they cover; Kafka's own committed offsets are not used. On
  (re)assignment a partition is positioned at its stored offset, so a crash (kill -9) at any
  moment replays exactly the records whose effects were not committed.
* ``self._next[tp]`` is the stored offset this instance believes it owns. A batch first locks
  those rows; a partition whose stored offset differs (another instance or a rebuild moved it)
  is skipped in that batch and re-positioned from the database (fencing), so two instances can
  never both apply the same records.
* Revocation waits for the in-flight batch (``self._lock``), so a partition is handed over only
  between transactions.
* A batch that fails (database or broker trouble) is rolled back and every partition is rewound
  to its stored offset; it is retried after a back-off. Records that cannot be used are
  dead-lettered inside the batch's transaction (published before the commit), and the offset
  moves past them with the rest.
* A batch's pure work (decoding, dropping in-batch duplicates, computing the changes) is done
  before its transaction opens, so no lock is held meanwhile; in :meth:`Projector.run` it is
  done while an earlier batch's transaction runs (pipelined, :data:`PREFETCH_DEPTH` batches
  ahead). Only records that continue a partition exactly at ``self._next[tp]`` (read under the
  lock, after that transaction committed) are applied; every prefetched batch is dropped when
  a batch fails.
* Logs name topics, partitions, offsets and reasons only; never ids or payload values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, Protocol

import asyncpg
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from services.projection import domain, store
from services.projection.gc_policy import collect_garbage_every
from services.projection.metrics import (
    ASSIGNED_PARTITIONS,
    BATCH_FAILURES,
    BATCH_LATENCY,
    BATCH_SIZE,
    CONSUMER_LAG,
    DUPLICATES,
    EVENTS_APPLIED,
    FENCED,
    FIGURES_DEFERRED,
    ID_CONFLICTS,
    LAST_APPLIED_AGE,
    OUTSIDE_OPENING_HOURS,
)
from services.projection.rooms import RoomChanges, room_changes, room_retraction
from services.projection.rooms_store import apply_room_changes
from services.projection.steps import AT_ONCE, Steps, finish, stepped
from shared.bootstrap import running
from shared.city import City
from shared.events.fast_decode import batch_decoder
from shared.events.views import REPORT_VOIDED, EventView
from shared.kafka.deadletter import DeadLetter
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)
#: Records decoded (then projected, then turned into claim rows) between two yields to the event
#: loop while a batch is prepared beside the transaction in flight: small enough that a
#: statement's answer waits at most a few milliseconds (~10 ms at ~35 us of Python per record:
#: the transaction, ~17 round trips, is the bound; 1,000 -> 250 took the 1M-event catch-up
#: from 15,701 to 18,150 events/s, bench/results/issue18/s7/), large enough that the yields
#: cost nothing.
PREPARE_SLICE = 250
#: Records taken from the consumer's buffer per ``getmany`` while a batch is fetched, yielding to
#: the event loop between takes: aiokafka turns buffered bytes into records inside ``getmany``
#: without yielding (~6 us per record), so one call for a 40,000-record batch held the event
#: loop ~250 ms while the transaction in flight waited for it (`python -m
#: bench.profile_catchup --timeline`: ``loop_stalls``).
FETCH_SLICE = 1000
#: Objects of an applied batch freed between two yields (:func:`_release`): records or decoded
#: events, each dropping a few objects (~1 ms per 1,000).
RELEASE_SLICE = 1000
#: Batches fetched and prepared ahead of the one being applied (:meth:`Projector.run`). With one,
#: Python idled whenever a transaction outlasted the next batch's preparation (a figure flush,
#: a slow commit) and PostgreSQL idled whenever the preparation outlasted the transaction; with
#: two, Python keeps preparing through a long transaction and the next ones start at once.
PREFETCH_DEPTH = 2
#: A fetch that brought fewer records than this (or than it could take, if less) found the
#: consumer caught up: the batches after it are fetched only when the one before is applied
#: (:meth:`Projector.run`). Live batches hold a few records (at 200 reports/s, 2-5); a
#: catch-up's are full (:class:`FetchRamp`: its first is 1/16 of ``batch_max_records``).
PREFETCH_MIN_RECORDS = 1000
#: How many batches prepared before a batch it looks for repeats in (retries and resends of
#: events already in them: :meth:`Projector._prepare_steps`): more than are ever in flight
#: (``PREFETCH_DEPTH`` + the one applied), since a partition's records do not come in every
#: batch. A repeat of an older one is left to the claim.
EARLIER_BATCHES = 4
#: The most visit rows made from an end alone that a projector remembers
#: (:meth:`Projector._note_visits`); past it, it forgets them all: the next batches' starts of
#: those visits then fail the optimistic insert once and are upserted (store._visits).
ROWS_WITHOUT_START_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class FigureDeferral:
    """When a batch leaves its visit figures pending (:meth:`Projector._defers`;
    ``DCR_PROJECTION_FIGURES_*``). A catch-up's batches touch the same days again and again
    (each day ~4.6 times in the 1M-event catch-up: its partitions are at different days), so
    the figures are recomputed once every few batches instead of once per batch
    (bench/NOTES.md)."""

    #: The fewest records a deferring batch has: only a consumer behind (a catch-up, a rebuild)
    #: fetches batches this large; a live batch has a few.
    min_records: int = 5_000
    #: The longest a projector leaves figures pending while it is behind, in seconds: past it,
    #: its next batch recomputes every pending key.
    max_delay_s: float = 5.0


class FetchRamp:
    """How many records each fetch of a run may bring: the first brings 1/:data:`RAMP_SHARE`
    of ``max_records``, each next one twice as many, up to ``max_records``. A run is
    pipelined (:meth:`Projector.run`): PostgreSQL idles until the first batch is decoded, and
    a whole 42,000-record batch took ~0.8 s of a catch-up's ~21 s; ramped, its first work comes
    after ~0.05 s and the pipeline is full after five fetches. Pure."""

    def __init__(self, max_records: int) -> None:
        self._max = max_records
        self._next = max(1, max_records // RAMP_SHARE)

    def take(self) -> int:
        """The most records the next fetch may bring."""
        n = self._next
        self._next = min(self._max, 2 * n)
        return n


#: A run's first fetch brings this share of its largest (:class:`FetchRamp`).
RAMP_SHARE = 16


class DeadLetterSink(Protocol):
    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Return once every letter is durably stored (raise otherwise)."""


def _still_seen(changes: domain.Changes, voided: Sequence[domain.Decoded]) -> None:
    """A voided event still shows its facility reporting (``facility_state``), whatever the
    order in which it and its void arrive."""
    for d in voided:
        if d.facility is not None:
            last = changes.facility_last_event.get(d.facility)
            if last is None or d.event.time > last:
                changes.facility_last_event[d.facility] = d.event.time


def to_raw(record: Any) -> domain.RawRecord:
    """An aiokafka ConsumerRecord as the domain's RawRecord."""
    headers = record.headers
    return domain.RawRecord(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp,
        record.key,
        record.value,
        tuple([(k, bytes(v)) for k, v in headers]) if headers else (),
    )


@dataclass(slots=True)
class Prepared:
    """A batch's pure work, done before its transaction: the records per partition (log order),
    decoded and rejected, the first occurrences, the changes of all of those, and what the
    transaction sends for them when they all turn out new (the common case: the claim's
    arguments, the room and street sums), so that PostgreSQL does not wait for that Python."""

    by_tp: dict[TopicPartition, list[Any]]
    decoded: list[domain.Decoded]
    rejected: list[domain.Rejected]
    unique: list[domain.Decoded]
    changes: domain.Changes
    claim: store.ClaimArguments
    rooms: RoomChanges
    #: The statements' arguments for ``changes`` (:func:`store.change_arguments`).
    writes: store.ChangeArguments
    #: The keys of ``decoded``'s conflicting repeats (:func:`domain.conflicting_repeats`).
    repeats: frozenset[tuple[str, str]]
    #: ``decoded``'s plain duplicates: its in-batch ones (:func:`domain.split_repeats`) and
    #: its repeats of the batches prepared before (``again``). When every unique event is
    #: new and each of ``again`` is the same report as its stored event, the events not new
    #: are these (counted per topic after the commit).
    duplicates: list[domain.Decoded]
    #: This batch's number in the order this projector prepared its batches.
    seq: int
    #: The events left out of ``unique`` as repeats of the batches numbered ``again_from`` to
    #: ``seq - 1`` (:func:`domain.split_earlier`: also in ``duplicates``). If those batches
    #: were the ones applied just before this one and applied them as new
    #: (:meth:`Projector._repeats_applied`), they are decided against their stored events, as
    #: events the claim found not new are; otherwise this batch is applied as if they were
    #: unique.
    again: list[domain.Decoded]
    again_from: int


class Projector:
    """Applies batches of one consumer's records; owns that consumer's positions."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        city: City,
        group: str,
        kafka: KafkaSettings,
        deadletters: DeadLetterSink,
        max_visit: timedelta = domain.DEFAULT_MAX_VISIT,
        figures: FigureDeferral = FigureDeferral(),
    ) -> None:
        self._max_visit = max_visit
        self._figures = figures
        self._pool = pool
        self._city = city
        self._group = group
        self._kafka = kafka
        self._deadletters = deadletters
        self._consumer: Any = None
        self._next: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()
        #: (facility, visit_id) of the visit rows the batches prepared here made from an end
        #: alone (its start not in the same batch): a start of one of them meets a stored row, so
        #: it is upserted; every other start is inserted optimistically (store._visits). A hint
        #: only: a row it misses (made before a restart, or by another instance) costs one
        #: failed attempt; one it keeps too long (that batch failed) costs nothing.
        self._rows_without_start: set[tuple[str, str]] = set()
        #: The visit starts of the batch prepared last (:meth:`_note_visits`).
        self._previous_starts: frozenset[tuple[str, str]] = frozenset()
        #: How many batches this projector has prepared (:attr:`Prepared.seq`).
        self._prepared = 0
        #: (number, keys of the first occurrences) of the batches prepared last, oldest first,
        #: whose repeats the next one leaves out (:meth:`_prepare_steps`); emptied by a rewind
        #: and an assignment (their records come again).
        self._earlier: deque[tuple[int, frozenset[tuple[str, str]]]] = deque(maxlen=EARLIER_BATCHES)
        #: (number, keys of the events applied as new) of the batches committed last, oldest
        #: first (:meth:`_repeats_applied`).
        self._applied: deque[tuple[int, AbstractSet[tuple[str, str]]]] = deque(
            maxlen=EARLIER_BATCHES
        )
        #: Kafka timestamp (ms) of the newest record applied by this instance.
        self.last_applied_ms: int | None = None
        #: Whether visit figures may be pending (``visit_figures_pending``): this projector
        #: deferred some since its last flush, or it cannot know (it just started, or was
        #: assigned partitions another instance held). Its next batch that does not defer, or
        #: its next idle poll, recomputes them all (:meth:`flush_figures`).
        self._maybe_pending = True
        #: ``time.monotonic()`` of this projector's first deferral since its last flush.
        self._deferring_since: float | None = None
        #: Whether this projector's last fetch found it caught up (:data:`PREFETCH_MIN_RECORDS`).
        self._caught_up = False

    # --- wiring ---------------------------------------------------------------------------

    def bind(self, consumer: Any) -> None:
        self._consumer = consumer

    def listener(self) -> ConsumerRebalanceListener:
        return _Listener(self)

    @property
    def positions(self) -> Mapping[TopicPartition, int]:
        """Stored next offset per partition this instance owns."""
        return dict(self._next)

    # --- rebalance ------------------------------------------------------------------------

    async def assigned(self, tps: Sequence[TopicPartition]) -> None:
        async with self._lock:
            self._maybe_pending = True  # another instance may have left figures pending
            self._earlier.clear()  # their records come from the stored offsets: maybe again
            await self._load(tps)

    async def revoked(self, tps: Sequence[TopicPartition]) -> None:
        """Called on revocation: waits for the batch in flight, then forgets the partitions."""
        async with self._lock:
            for tp in tps:
                self._next.pop(tp, None)
                _forget_lag(self._logical(tp.topic), tp.partition)
            ASSIGNED_PARTITIONS.set(len(self._next))

    async def _load(self, tps: Sequence[TopicPartition]) -> None:
        if not tps:
            return
        # Records before a partition's log start were deleted by Kafka's retention (older than
        # the sealed days, docs/retention.md): a position before it moves up to it.
        begins = await self._consumer.beginning_offsets(list(tps))
        async with self._pool.acquire() as conn:
            offsets = await store.load_offsets(
                conn,
                self._group,
                [(tp.topic, tp.partition) for tp in tps],
                {(tp.topic, tp.partition): int(n) for tp, n in begins.items()},
            )
        for tp in tps:
            offset = offsets[(tp.topic, tp.partition)]
            self._consumer.seek(tp, offset)
            self._next[tp] = offset
        ASSIGNED_PARTITIONS.set(len(self._next))
        log.info("positioned %d partition(s) at their stored offsets", len(tps))

    async def ensure_positions(self) -> None:
        """Position assigned partitions that have no stored offset loaded yet (e.g. when the
        database was unreachable during the rebalance callback)."""
        missing = [tp for tp in self._consumer.assignment() if tp not in self._next]
        if missing:
            async with self._lock:
                await self._load([tp for tp in missing if tp not in self._next])

    def rewind(self) -> None:
        """Seek every owned partition back to its stored offset (after a failed batch)."""
        self._earlier.clear()  # their records come again: not repeats of them
        for tp, offset in self._next.items():
            self._consumer.seek(tp, offset)

    # --- the loop -------------------------------------------------------------------------

    async def poll_once(self, timeout_ms: int, max_records: int) -> int:
        """Fetch one batch and apply it; return the number of records it covered."""
        return await self.apply_fetched(await self.fetch(timeout_ms, max_records))

    async def fetch(self, timeout_ms: int, max_records: int) -> Prepared | None:
        """Fetch one batch and do its pure work (None: nothing arrived). Runs while the previous
        batch's transaction is in flight (:meth:`run`): nothing here touches the database or
        the stored positions; :meth:`apply_fetched` checks the batch against them."""
        await self.ensure_positions()
        by_tp = await self._take(timeout_ms, max_records)
        taken = sum(len(records) for records in by_tp.values())
        self._caught_up = taken < min(PREFETCH_MIN_RECORDS, max_records)
        return await self._prepare_yielding(by_tp) if by_tp else None

    async def _take(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        """Up to ``max_records`` records, per partition in offset order: what one
        ``getmany(timeout_ms, max_records)`` returns (waiting up to ``timeout_ms`` for the
        first), taken :data:`FETCH_SLICE` at a time with a yield to the event loop between
        takes; stops early when the consumer has nothing more buffered (or a partition was
        re-positioned meanwhile: see :func:`_merge`)."""
        by_tp: dict[TopicPartition, list[Any]] = {}
        want = min(FETCH_SLICE, max_records)
        got = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=want)
        n = taken = _merge(by_tp, got)
        while n == want and taken < max_records:  # a full take: more may be buffered
            await asyncio.sleep(0)
            want = min(FETCH_SLICE, max_records - taken)
            n = _merge(by_tp, await self._consumer.getmany(timeout_ms=0, max_records=want))
            taken += max(n, 0)
        return by_tp

    async def apply_fetched(self, prepared: Prepared | None) -> int:
        """Apply what :meth:`fetch` prepared (the part still usable); return the number of
        records covered."""
        applied = 0
        async with self._lock:
            if prepared is not None:
                prepared = self._usable(prepared)
            if prepared is not None:
                applied = await self._apply(prepared)
        self.observe()
        return applied

    def _prepare(
        self, by_tp: dict[TopicPartition, list[Any]], cut_from: Prepared | None = None
    ) -> Prepared:
        """Decode, drop in-batch duplicates and project every unique event, at once. Pure: no
        I/O. ``cut_from``: the batch whose records of owned partitions ``by_tp`` keeps
        (:meth:`_usable`, :meth:`_prepare_steps`)."""
        return finish(self._prepare_steps(by_tp, AT_ONCE, cut_from))

    def _write_steps(self, changes: domain.Changes, step: int) -> Steps[store.ChangeArguments]:
        """The statements' arguments for a prepared batch's ``changes`` (its visit starts split
        by ``_rows_without_start``), in steps (:func:`store.change_argument_steps`); the visit
        rows they make are noted once they are built (:meth:`_note_visits`; fetches never
        overlap: no other batch is prepared meanwhile)."""
        writes = yield from store.change_argument_steps(changes, self._rows_without_start, step)
        self._note_visits(changes)
        return writes

    def _note_visits(self, changes: domain.Changes) -> None:
        """Remember the visit rows ``changes`` makes from an end alone (neither this batch nor
        the one before wrote its start) and forget those whose start it writes (see
        ``_rows_without_start``). An end of a visit started in an older batch is remembered
        too: harmless (its start, if reported again, is upserted), and bounded by the limit."""
        held = self._rows_without_start
        starts, earlier = changes.visit_starts, self._previous_starts
        held.difference_update(starts)
        alone = [k for k in changes.visit_ends if k not in starts and k not in earlier]
        if len(held) + len(alone) > ROWS_WITHOUT_START_LIMIT:
            held.clear()  # their starts, if they ever come, fail one attempt and are upserted
        held.update(alone)
        self._previous_starts = frozenset(starts)

    async def _prepare_yielding(self, by_tp: dict[TopicPartition, list[Any]]) -> Prepared:
        """:meth:`_prepare` in slices of :data:`PREPARE_SLICE` records, yielding to the event
        loop between slices, so the statements of the transaction in flight are answered
        promptly while this batch is decoded."""
        return await stepped(self._prepare_steps(by_tp, PREPARE_SLICE))

    def _prepare_steps(
        self,
        by_tp: dict[TopicPartition, list[Any]],
        step: int,
        cut_from: Prepared | None = None,
    ) -> Steps[Prepared]:
        """The batch's pure work in slices of ``step`` records (:mod:`.steps`). The result does
        not depend on ``step``: decoding is per record, projecting slices in log order into one
        Changes (and room sums) equals projecting them at once, and the statements' arguments
        are built and encoded in steps that give the same text. Only the in-batch repeats are
        found in one go (~11 ms for a catch-up batch), and the repeats of the
        :data:`EARLIER_BATCHES` batches prepared before (:func:`domain.split_earlier`: a retry
        or resend that crossed a batch boundary), which are left out of the claim like in-batch
        duplicates. Claimed with the rest, one of them failed the batch's optimistic claim and
        sent it down the slow path: with 1 % of the log resent ~30 minutes after its report,
        17-21 of a catch-up's 26-28 batches, and 25,000 against 37,600 events/s
        (bench/NOTES.md, "resends across batch boundaries").

        A batch ``cut_from`` another (the part of a prefetched batch a rebalance left to this
        instance) takes its place: its number, and no repeats left out (its events are those
        of the batch it replaces, which was never applied: the claim decides)."""
        records = [r for rs in by_tp.values() for r in rs]
        decoded: list[domain.Decoded] = []
        rejected: list[domain.Rejected] = []
        decode = batch_decoder()  # one for the batch: its repeated headers checked once
        for i in range(0, len(records), step):
            d, r = domain.decode_batch(records[i : i + step], self._city, decode)
            decoded += d
            rejected += r
            yield
        unique, conflicting, duplicates = domain.split_repeats(decoded)
        repeats = _conflicting_keys(conflicting)
        keys = store.dedup_keys(unique)
        again: list[domain.Decoded] = []
        if cut_from is not None:
            seq = again_from = cut_from.seq
        else:
            self._prepared += 1
            seq = self._prepared
            earlier = self._earlier
            again_from = earlier[0][0] if earlier else seq
            if earlier:  # retries and resends of events of the batches before
                unique, again = domain.split_earlier(
                    unique, keys, [k for _, k in earlier], never=repeats
                )
                if again:
                    keys -= store.dedup_keys(again)
                    duplicates += again
            earlier.append((seq, keys))
        changes = domain.Changes()
        rooms = RoomChanges()
        for i in range(0, len(unique), step):
            part = unique[i : i + step]
            domain.project_decoded(part, self._city, into=changes)
            room_changes(part, into=rooms)
            yield
        claim = yield from store.claim_argument_steps(unique, step, keys)
        writes = yield from self._write_steps(changes, step)
        return Prepared(
            by_tp,
            decoded,
            rejected,
            unique,
            changes,
            claim,
            rooms,
            writes,
            repeats,
            duplicates,
            seq,
            again,
            again_from,
        )

    def _usable(self, batch: Prepared) -> Prepared | None:
        """What of ``batch`` may be applied now (called under the lock, after a rebalance may
        have moved partitions): the records of partitions this instance owns that continue
        exactly at their stored offset (earlier ones were applied already). A partition whose
        records start later is sought back to its stored offset and skipped in this batch."""
        keep: dict[TopicPartition, list[Any]] = {}
        changed = False
        for tp, rs in batch.by_tp.items():
            nxt = self._next.get(tp)
            if nxt is None:
                changed = True
                continue
            if rs[0].offset < nxt:
                rs = [r for r in rs if r.offset >= nxt]
                changed = True
            if not rs:
                continue
            if rs[0].offset != nxt:
                log.info(
                    "partition %s/%d: fetched records do not continue at the stored offset; "
                    "re-positioning",
                    self._logical(tp.topic),
                    tp.partition,
                )
                self._consumer.seek(tp, nxt)
                changed = True
                continue
            keep[tp] = rs
        if not changed:
            return batch
        return self._prepare(keep, cut_from=batch) if keep else None

    async def run(
        self,
        stop: asyncio.Event,
        *,
        poll_timeout_ms: int,
        max_records: int,
        backoff_s: float,
        until: Mapping[TopicPartition, int] | None = None,
        on_batch: Callable[[], None] | None = None,
    ) -> None:
        """Poll and apply until ``stop`` is set (or, with ``until``, every partition reached its
        end offset there). Failed batches are retried from the stored offsets. ``on_batch`` is
        called after every poll (progress reporting).

        Pipelined while behind: batches N+1 .. N+:data:`PREFETCH_DEPTH` are fetched and
        prepared (:meth:`fetch`), one after another, while batch N's transaction runs, so Python
        and PostgreSQL work at the same time, and Python goes on through a long transaction (a
        figure flush) instead of idling once the next batch is ready. Caught up (the last fetch
        brought fewer than :data:`PREFETCH_MIN_RECORDS`), the next batch is fetched once batch
        N is applied, and so holds every record that arrived during N's transaction; fetched
        ahead, live records were taken a few at a time as they arrived, in batches queued
        behind N, each costing a transaction. A prefetched batch is
        only ever applied through :meth:`apply_fetched` (which keeps exactly the records
        continuing at the stored offsets, checked again under the offset row locks), and every
        prefetched batch is dropped when a batch fails or the loop ends (every partition is
        then rewound to its stored offset, so the next run() fetches exactly what was not
        applied).

        Visit figures the batches left pending (:meth:`_defers`) are recomputed on a poll that
        brought nothing, at the end of a bounded run and when stopped (:meth:`flush_figures`).

        The first fetches bring fewer records (:class:`FetchRamp`), so PostgreSQL starts sooner.

        Garbage is collected by time while it runs (:mod:`.gc_policy`): a full collection at
        most every :data:`~.gc_policy.GC_FULL_EVERY_S` seconds, beside the batches."""
        ahead: deque[asyncio.Task[Prepared | None]] = deque()
        releasing: asyncio.Task[None] | None = None
        ramp = FetchRamp(max_records)
        async with running(collect_garbage_every(), "projection-gc"):
            try:
                while not stop.is_set():
                    if until is not None and self.reached(until):
                        await self.flush_figures()  # the end of a bounded run: none left
                        return
                    try:
                        self._prefetch(ahead, poll_timeout_ms, ramp, 1)
                        prepared = await ahead.popleft()
                        depth = 0 if self._caught_up else PREFETCH_DEPTH
                        self._prefetch(ahead, poll_timeout_ms, ramp, depth)
                        await self.apply_fetched(prepared)
                        if prepared is None:  # an idle poll: nothing more to wait for
                            await self.flush_figures()
                        else:  # freed beside the next transaction
                            if releasing is not None:
                                await releasing
                            releasing = asyncio.create_task(_release(prepared))
                            prepared = None
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        BATCH_FAILURES.inc()
                        # The type only: driver messages may quote values. Tracebacks for the
                        # unexpected.
                        log.warning(
                            "batch failed (%s); retrying from stored offsets",
                            type(exc).__name__,
                            exc_info=not _expected(exc),
                        )
                        await _drop_all(ahead)
                        async with self._lock:
                            self.rewind()
                        await _sleep_or_stop(stop, backoff_s)
                    if on_batch is not None:
                        on_batch()
                await self._flush_on_stop()
            finally:
                await _drop(releasing)
                if ahead:
                    # The prefetches may have fetched records (moving the consumer past them)
                    # that will never be applied: seek back to the stored offsets, or a later
                    # run() on this consumer (after a lost lock session) would skip them until
                    # the partition receives more records.
                    await _drop_all(ahead)
                    async with self._lock:
                        self.rewind()

    def _prefetch(
        self,
        ahead: deque[asyncio.Task[Prepared | None]],
        timeout_ms: int,
        ramp: FetchRamp,
        depth: int,
    ) -> None:
        """Start fetches until ``depth`` are ahead, each after the one before."""
        while len(ahead) < depth:
            previous = ahead[-1] if ahead else None
            ahead.append(asyncio.create_task(self._fetch_after(previous, timeout_ms, ramp.take())))

    async def _fetch_after(
        self, previous: asyncio.Task[Prepared | None] | None, timeout_ms: int, max_records: int
    ) -> Prepared | None:
        """:meth:`fetch`, once ``previous`` (the prefetch before this one) has ended: fetches
        never overlap, so batches follow one another in offset order. Nothing is fetched after
        a failed or cancelled one (:meth:`run` then drops every prefetch and rewinds)."""
        if previous is not None:
            await asyncio.wait([previous])  # its failure is reported where it is awaited
            if previous.cancelled() or previous.exception() is not None:
                return None
        return await self.fetch(timeout_ms, max_records)

    async def flush_figures(self) -> int:
        """Recompute every pending visit figure (:func:`store.flush_pending_figures`) if some
        may be pending; returns how many keys. Called when a poll brought nothing, when a
        bounded run ends and when the loop stops, so that figures wait only while records do."""
        if not self._maybe_pending:
            return 0
        async with self._lock, self._pool.acquire() as conn, conn.transaction():
            n = await store.flush_pending_figures(conn, self._max_visit)
        self._figures_flushed()
        return n

    async def _flush_on_stop(self) -> None:
        """Recompute the pending figures when the loop is stopped (a shutdown, a lost lock
        session), so that they do not wait for the next start; best effort: if the database
        is unreachable they stay pending, and the next projector to start recomputes them."""
        try:
            await self.flush_figures()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("pending visit figures left for the next start (%s)", type(exc).__name__)

    def _figures_flushed(self) -> None:
        self._maybe_pending = False
        self._deferring_since = None

    def _defers(self, by_tp: Mapping[TopicPartition, Sequence[Any]], kept: int) -> bool:
        """Whether a batch leaves its visit figures pending: it is large (a consumer behind),
        some of its partitions have records after it (``highwater``, as last fetched), and this
        projector's figures have not waited :attr:`FigureDeferral.max_delay_s` yet. The batch that
        reaches the end of what was fetched therefore recomputes every pending figure in its
        transaction: once a consumer's stored offsets reach the log's end, its figures are
        exact."""
        if kept < self._figures.min_records:
            return False
        since = self._deferring_since
        if since is not None and time.monotonic() - since >= self._figures.max_delay_s:
            return False
        consumer = self._consumer
        for tp, rs in by_tp.items():
            high = consumer.highwater(tp)
            if high is not None and rs[-1].offset + 1 < high:
                return True
        return False

    def _repeats_applied(self, batch: Prepared) -> bool:
        """Whether the events ``batch`` left out as repeats of the batches prepared before it
        (:attr:`Prepared.again`) were claimed, each by the one of those batches that held it
        (:func:`domain.split_earlier`): those batches are the ones committed last, in order,
        and each applied its event as new. Such a repeat is then what the claim would call
        not new, and it is decided as those are (:meth:`_apply`: the same report, a duplicate;
        another, a conflict). Otherwise (one of those batches failed, was cut by a rebalance,
        found it conflicting, claimed before or sealed) the batch is applied as if they were
        unique, and the claim decides."""
        if not batch.again:
            return True
        tail = list(self._applied)[-(batch.seq - batch.again_from) :]
        if [n for n, _ in tail] != list(range(batch.again_from, batch.seq)):
            return False
        return all(any(d.dedup_key in keys for _, keys in tail) for d in batch.again)

    def reached(self, until: Mapping[TopicPartition, int]) -> bool:
        return all(self._next.get(tp, -1) >= end for tp, end in until.items())

    async def _apply(self, batch: Prepared) -> int:
        """Apply a prepared batch (records of owned partitions, each continuing at its stored
        offset, in log order) in one transaction; return how many records were covered (applied,
        duplicate or dead-lettered). The batch's changes were computed for all its unique events,
        expecting them to be new; they are recomputed for the new ones if some were applied."""
        started = time.perf_counter()
        by_tp = batch.by_tp
        unique = batch.unique
        async with self._pool.acquire() as conn, conn.transaction():
            stored = await store.lock_offsets(
                conn, self._group, [(tp.topic, tp.partition) for tp in by_tp]
            )
            stale = {tp for tp in by_tp if stored.get((tp.topic, tp.partition)) != self._next[tp]}
            kept = sum(len(rs) for tp, rs in by_tp.items() if tp not in stale)
            decoded, rejected = batch.decoded, batch.rejected
            if stale:
                gone = {(tp.topic, tp.partition) for tp in stale}
                decoded = [d for d in decoded if (d.record.topic, d.record.partition) not in gone]
                rejected = [r for r in rejected if (r.record.topic, r.record.partition) not in gone]
                unique = domain.first_occurrences(decoded)
            sealed = await store.sealed_before(conn)
            late = domain.sealed_events(decoded, sealed, self._city) if sealed else []
            if late:  # days retention sealed: their aggregates are final (dead-lettered)
                late_ids = {id(d) for d in late}
                decoded = [d for d in decoded if id(d) not in late_ids]
                rejected = [*rejected, *(domain.Rejected(d.record, domain.SEALED) for d in late)]
                unique = domain.first_occurrences(decoded)
            if unique is batch.unique and not self._repeats_applied(batch):
                unique = domain.first_occurrences(decoded)  # its repeats claimed after all
            defer = self._defers({tp: rs for tp, rs in by_tp.items() if tp not in stale}, kept)
            flush = [] if defer or not self._maybe_pending else await store.pending_districts(conn)
            await store.lock_districts(conn, {*flush, *(d.district for d in unique)})
            # One (source, id) with two different events: none of them counts, in any order
            # (the ingest services answer 409, so this comes from elsewhere); all dead-lettered.
            conflicted = set(
                batch.repeats
                if decoded is batch.decoded
                else _conflicting_keys(domain.conflicting_repeats(decoded))
            )
            # The arguments built beforehand hold for the batch's unique events as prepared.
            claim = batch.claim if unique is batch.unique else unique
            new_keys, voided_before = await store.claim_events(conn, claim)
            all_new = len(new_keys) == len(unique) and not stale and not late
            fresh = unique if all_new else [d for d in unique if d.dedup_key in new_keys]
            undo: list[EventView] = []
            # Claimed before: a retry, a resend, or an id reused with another report (conflict).
            claimed_before = [] if all_new else [d for d in unique if d.dedup_key not in new_keys]
            if unique is batch.unique:  # and those left out of the claim as claimed before
                claimed_before += batch.again
            if claimed_before:
                before = await store.stored_events(conn, [d.dedup_key for d in claimed_before])
                for d in claimed_before:
                    if d.dedup_key not in before:
                        continue
                    earlier = before[d.dedup_key]
                    if earlier is None or not domain.same_event(earlier, d.event):
                        conflicted.add(d.dedup_key)
                        if earlier is not None:
                            undo.append(earlier)
            if conflicted:
                ID_CONFLICTS.inc(len(conflicted))
                bad = [d for d in decoded if d.dedup_key in conflicted]
                times: dict[tuple[str, str], datetime] = {}
                for d in bad:
                    times[d.dedup_key] = min(times.get(d.dedup_key, d.event.time), d.event.time)
                await store.mark_conflicted(conn, times)
                rejected = [*rejected, *(domain.Rejected(d.record, domain.CONFLICT) for d in bad)]
                decoded = [d for d in decoded if d.dedup_key not in conflicted]
                fresh = [d for d in fresh if d.dedup_key not in conflicted]
            voids = [d for d in fresh if d.event.type == REPORT_VOIDED]
            fresh_keys = batch.claim.keys if fresh is batch.unique else {d.dedup_key for d in fresh}
            voided = fresh_keys & (domain.void_targets(voids) | voided_before)
            if voided:  # claimed, never applied (the void arrived first or with them)
                changes = domain.project_decoded(
                    [d for d in fresh if d.dedup_key not in voided], self._city
                )
                _still_seen(changes, [d for d in fresh if d.dedup_key in voided])
            elif fresh is batch.unique:  # the unique events as prepared, all new
                changes = batch.changes  # computed for exactly these events
            else:
                changes = domain.project_decoded(fresh, self._city)
            if conflicted:
                _still_seen(changes, bad)
            await store.apply_changes(
                conn, changes, self._max_visit, batch.writes, defer=defer, flush=flush
            )
            applied = [d for d in fresh if d.dedup_key not in voided] if voided else fresh
            rooms = batch.rooms if applied is batch.unique else room_changes(applied)
            await apply_room_changes(conn, rooms)
            zone = self._city.zone
            if undo:
                await store.retract(conn, domain.retraction(undo, self._city), self._max_visit)
                await apply_room_changes(conn, room_retraction(undo, zone))
            retracted = await store.record_voids(conn, voids, skip=fresh_keys)
            if retracted:
                await store.retract(conn, domain.retraction(retracted, self._city), self._max_visit)
                await apply_room_changes(conn, room_retraction(retracted, zone))
            await self._deadletters.publish([_letter(r) for r in rejected])
            positions = {
                (tp.topic, tp.partition): (rs[-1].offset + 1, _ts(rs[-1].timestamp))
                for tp, rs in by_tp.items()
                if tp not in stale
            }
            await store.save_offsets(conn, self._group, positions)
        # committed: from here on the effects are durable
        self._applied.append((batch.seq, fresh_keys))
        if defer:
            FIGURES_DEFERRED.inc()
            self._maybe_pending = True
            if self._deferring_since is None:
                self._deferring_since = time.monotonic()
        elif self._maybe_pending:
            self._figures_flushed()
        for tp, rs in by_tp.items():
            if tp in stale:
                FENCED.inc()
                log.warning(
                    "partition %s/%d was moved by another writer; re-positioning",
                    self._logical(tp.topic),
                    tp.partition,
                )
                self._next.pop(tp, None)
            else:
                self._next[tp] = rs[-1].offset + 1
                newest = max(map(_TIMESTAMP, rs))
                self.last_applied_ms = max(self.last_applied_ms or newest, newest)
        BATCH_SIZE.observe(kept)
        BATCH_LATENCY.observe(time.perf_counter() - started)
        for event_type, n in changes.applied_types.items():
            EVENTS_APPLIED.labels(event_type).inc(n)
        for facility, n in changes.outside_opening_hours.items():
            OUTSIDE_OPENING_HOURS.labels(facility).inc(n)
        if len(fresh) != len(decoded):  # the events not new, per topic
            if fresh is batch.unique and decoded is batch.decoded:  # in-batch duplicates only
                repeated = Counter(map(_TOPIC, batch.duplicates))  # ~1 %: not a pass over all
            else:
                repeated = Counter(map(_TOPIC, decoded))
                repeated.subtract(map(_TOPIC, fresh))
            for topic, n in repeated.items():
                if n:
                    DUPLICATES.labels(self._logical(topic)).inc(n)
        return kept

    def observe(self) -> None:
        """Update the lag and age gauges (called every loop)."""
        for tp, offset in self._next.items():
            high = self._consumer.highwater(tp)
            if high is not None:
                CONSUMER_LAG.labels(self._logical(tp.topic), str(tp.partition)).set(
                    max(high - offset, 0)
                )
        if self.last_applied_ms is not None:
            LAST_APPLIED_AGE.set(max(time.time() - self.last_applied_ms / 1000, 0.0))

    def _logical(self, topic: str) -> str:
        prefix = self._kafka.topic_prefix
        return topic[len(prefix) :] if topic.startswith(prefix) else topic


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, projector: Projector) -> None:
        self._p = projector

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._p.revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        try:
            await self._p.assigned(list(assigned))
        except Exception as exc:  # positioned later by ensure_positions()
            log.warning(
                "could not load stored offsets on assignment (%s); will retry", type(exc).__name__
            )


def _conflicting_keys(conflicting: Sequence[domain.Decoded]) -> frozenset[tuple[str, str]]:
    """The (source, id) keys of conflicting repeats (:func:`domain.split_repeats`: one key,
    two different events: none of them counts)."""
    return frozenset(d.dedup_key for d in conflicting)


async def _release(batch: Prepared) -> None:
    """Free an applied batch's records and decoded events a slice at a time, yielding to the
    event loop between slices. Dropped at once, a 40,000-record batch's ~16 objects per record
    were deallocated in one go (~100 ms) between two transactions, PostgreSQL idle meanwhile;
    this runs beside the next batch's transaction instead. Empties the batch's lists: call it
    only once the batch is applied and nothing reads it any more."""
    batch.unique.clear()  # the same events as ``decoded``: frees nothing yet
    batch.duplicates.clear()
    for held in (batch.decoded, *batch.by_tp.values()):  # events first, then their records
        while held:
            del held[-RELEASE_SLICE:]
            await asyncio.sleep(0)


def _merge(by_tp: dict[TopicPartition, list[Any]], got: Mapping[TopicPartition, Any]) -> int:
    """Append ``got`` (a ``getmany`` result: each partition's next records, in order) to
    ``by_tp``; return how many records were appended, or -1 if some partition's records do not
    continue the ones held (a rebalance re-positioned it between two takes: they are left out,
    and the batch after this one, not continuing at the stored offset, seeks back there)."""
    n = 0
    broken = False
    for tp, rs in got.items():
        if not rs:
            continue
        held = by_tp.get(tp)
        if held and rs[0].offset != held[-1].offset + 1:
            broken = True
            continue
        by_tp.setdefault(tp, []).extend(rs)
        n += len(rs)
    return -1 if broken else n


def _letter(r: domain.Rejected) -> DeadLetter:
    rec = to_raw(r.record)
    return DeadLetter(
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
        key=rec.key,
        value=rec.value,
        headers=rec.headers,
        reason=r.reason,
    )


#: A record's timestamp, and a decoded event's topic, read in C (per event, after a commit).
_TIMESTAMP = attrgetter("timestamp")
_TOPIC = attrgetter("record.topic")


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _forget_lag(topic: str, partition: int) -> None:
    with contextlib.suppress(KeyError):
        CONSUMER_LAG.remove(topic, str(partition))


def _expected(exc: BaseException) -> bool:
    """Outages we expect (no traceback in the log for these)."""
    return isinstance(
        exc,
        OSError
        | TimeoutError
        | KafkaError
        | asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.CannotConnectNowError,
    )


async def _drop(task: asyncio.Task[Any] | None) -> None:
    """Cancel a task and wait for it to end: a prefetch (its batch, if any, is not applied) or
    a release (:func:`_release`: what it had not freed yet goes at once)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def _drop_all(tasks: deque[asyncio.Task[Any]]) -> None:
    """:func:`_drop` every prefetch, the newest first (none of them then starts fetching)."""
    while tasks:
        await _drop(tasks.pop())


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
