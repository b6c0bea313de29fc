"""Paces the model's stream on a simulated clock and hands each report to its lane's sender.

Invariants:

* the simulated clock is ``min(start + elapsed * speed, wall-clock now)``: a fast run backfills,
  and no report is ever sent before its ``occurred_at`` has happened in reality (the APIs refuse
  the future);
* one lane per (model lane, service) sends strictly in stream order, one request at a time, so a
  facility's events reach each topic in order; lanes run concurrently with each other;
* a report that refers to a visit is sent only after that visit's start was accepted, with the
  ``visit_id`` intake issued; if the start was refused, the dependent is counted as failed;
* every dispatched report ends up in exactly one of accepted / failed / unsent (the run was
  stopped before it was delivered).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.simulator.model import IntendedReport, Service
from services.simulator.sender import Result, Sender

log = logging.getLogger(__name__)

#: Resolved visit ids are forgotten once the dispatch position is this far past the start.
_VISIT_MEMORY = timedelta(hours=12)


class SimClock:
    """The simulated clock; see the module invariant. Injectable time sources for tests."""

    def __init__(
        self,
        start: datetime,
        speed: float,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        self._wall = wall
        self._monotonic = monotonic
        self._t0 = monotonic()

    def now(self) -> datetime:
        fast = self.start + timedelta(seconds=(self._monotonic() - self._t0) * self.speed)
        return min(fast, self._wall())

    def real_time(self) -> bool:
        """True once the fast clock has caught up with the wall clock."""
        fast = self.start + timedelta(seconds=(self._monotonic() - self._t0) * self.speed)
        return fast >= self._wall()

    def wait_s(self, at: datetime) -> float:
        """Wall seconds until ``now() >= at`` (0 if already)."""
        fast = (at - self.start).total_seconds() / self.speed - (self._monotonic() - self._t0)
        real = (at - self._wall()).total_seconds()
        return max(0.0, fast, real)


@dataclass
class EventStats:
    sent: int = 0  # dispatched to a lane
    accepted: int = 0  # 202 (including replays)
    retried: int = 0  # extra attempts
    failed: int = 0  # refused for good, or its visit start was refused
    replayed: int = 0  # 202 answered from the idempotency store (sent before)

    @property
    def unsent(self) -> int:
        return self.sent - self.accepted - self.failed


@dataclass
class Stats:
    by_event: defaultdict[str, EventStats] = field(default_factory=lambda: defaultdict(EventStats))
    position: datetime | None = None  # ``at`` of the last dispatched report
    open_visits: int = 0  # visits started minus ended, in dispatched reports
    #: Accepted reports per CloudEvents type.
    accepted_types: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))

    def total(self) -> EventStats:
        t = EventStats()
        for s in self.by_event.values():
            t.sent += s.sent
            t.accepted += s.accepted
            t.retried += s.retried
            t.failed += s.failed
            t.replayed += s.replayed
        return t

    def record(self, report: IntendedReport, result: Result) -> None:
        """Count the outcome (the lane counts retries as they happen)."""
        s = self.by_event[report.event]
        if result.accepted:
            s.accepted += 1
            s.replayed += result.replayed
            self.accepted_types[report.event_type] += 1
        else:
            s.failed += 1


_Item = tuple[IntendedReport, "asyncio.Future[str | None] | None"]


class Runner:
    """Dispatches ``reports`` (time-ordered) on ``clock`` to per-lane senders."""

    def __init__(
        self,
        reports: Iterable[IntendedReport],
        sender: Sender,
        clock: SimClock,
        *,
        run_id: str,
        queue_size: int = 2000,
    ) -> None:
        self._reports = reports
        self._sender = sender
        self._clock = clock
        self._run_id = run_id
        self._queue_size = queue_size
        self.stats = Stats()
        self._lanes: dict[tuple[str, Service], asyncio.Queue[_Item | None]] = {}
        #: Per lane, the ``at`` of each report dispatched and not yet finished (in lane order).
        self._pending_at: dict[tuple[str, Service], deque[datetime]] = defaultdict(deque)
        self._workers: list[asyncio.Task[None]] = []
        self._visits: dict[str, tuple[datetime, asyncio.Future[str | None]]] = {}
        self._queued = 0  # reports in the lane queues (end-of-stream markers not counted)
        self._inflight = 0
        self._idle = asyncio.Event()  # set while no report is queued or in flight
        self._idle.set()
        self.finished = False  # run() returned
        self.completed = False  # ... after delivering the whole stream (not stopped)

    def key(self, report: IntendedReport) -> str:
        """The report's Idempotency-Key: stable for a given run id, unique within the run."""
        return f"sim-{self._run_id}-{report.lane}-{report.seq}"

    def delivered_until(self) -> datetime | None:
        """Every report before this simulated time is finished (accepted or failed): the ``at`` of
        the oldest report still queued or in flight, else that of the last one dispatched."""
        heads = [d[0] for d in self._pending_at.values() if d]
        return min(heads) if heads else self.stats.position

    @property
    def queued(self) -> int:
        """Reports waiting in the lanes (not yet picked up by their sender)."""
        return self._queued

    async def run(self, stop: asyncio.Event, grace_s: float = 10.0) -> Stats:
        """Dispatch until the stream ends or ``stop`` is set, then wait for the lanes: until all
        reports are delivered if the stream ended, for at most ``grace_s`` once stopped (what is
        left is counted as unsent)."""
        try:
            await self._dispatch(stop)
            if not stop.is_set():
                for q in self._lanes.values():
                    if not await _put_or_stop(q, None, stop):
                        break
                stopper = asyncio.ensure_future(stop.wait())
                while not stopper.done() and not all(w.done() for w in self._workers):
                    await asyncio.wait(
                        {*self._workers, stopper}, return_when=asyncio.FIRST_COMPLETED
                    )
                stopper.cancel()
                self.completed = not stop.is_set()
            if stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), grace_s)
        finally:
            for w in self._workers:
                w.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            self.finished = True
        return self.stats

    async def _dispatch(self, stop: asyncio.Event) -> None:
        for n, report in enumerate(self._reports):
            if stop.is_set():
                return
            while (delay := self._clock.wait_s(report.at)) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(delay, 1.0))
                if stop.is_set():
                    return
            if n % 100 == 0:
                await asyncio.sleep(0)  # let the lanes run while a backlog is dispatched
            future: asyncio.Future[str | None] | None = None
            if report.visit_ref is not None:
                created = asyncio.get_running_loop().create_future()
                self._visits[report.visit_ref] = (report.at, created)
            if report.needs_visit is not None and report.needs_visit in self._visits:
                future = self._visits[report.needs_visit][1]
            self._queued += 1  # before the put: a worker may take the item before we resume
            self._idle.clear()
            pending = self._pending_at[(report.lane, report.service)]
            pending.append(report.at)
            if not await _put_or_stop(
                self._lane(report.lane, report.service), (report, future), stop
            ):
                self._queued -= 1
                pending.pop()
                self._update_idle()
                return
            self.stats.by_event[report.event].sent += 1
            self.stats.position = report.at
            self.stats.open_visits += (report.event == "visit.started") - (
                report.event == "visit.ended"
            )
            if n % 1000 == 0:
                self._forget_visits(report.at - _VISIT_MEMORY)

    def _lane(self, name: str, service: Service) -> asyncio.Queue[_Item | None]:
        key = (name, service)
        if key not in self._lanes:
            q: asyncio.Queue[_Item | None] = asyncio.Queue(self._queue_size)
            self._lanes[key] = q
            self._workers.append(asyncio.create_task(self._work(q), name=f"lane {name} {service}"))
        return self._lanes[key]

    async def _work(self, q: asyncio.Queue[_Item | None]) -> None:
        while (item := await q.get()) is not None:
            self._queued -= 1
            self._inflight += 1
            try:
                await self._deliver(*item)
            except Exception:  # a bug: count it, keep the lane going
                log.exception("could not deliver %s", item[0].event)
                self.stats.by_event[item[0].event].failed += 1
                self._resolve(item[0], None)
            finally:
                self._inflight -= 1
                self._pending_at[(item[0].lane, item[0].service)].popleft()
                self._update_idle()

    def _update_idle(self) -> None:
        if not self._inflight and not self.queued:
            self._idle.set()

    async def _deliver(
        self, report: IntendedReport, future: asyncio.Future[str | None] | None
    ) -> None:
        visit_id: str | None = None
        if future is not None:
            visit_id = await future
            if visit_id is None:
                self.stats.by_event[report.event].failed += 1
                self._resolve(report, None)
                return
        stats = self.stats.by_event[report.event]

        def retried() -> None:
            stats.retried += 1

        result = await self._sender.send(report, self.key(report), visit_id, retried)
        self.stats.record(report, result)
        self._resolve(report, result)

    def _resolve(self, report: IntendedReport, result: Result | None) -> None:
        if report.visit_ref is None or report.visit_ref not in self._visits:
            return
        future = self._visits[report.visit_ref][1]
        if future.done():
            return
        visit_id = result.response.get("visit_id") if result and result.accepted else None
        if result is not None and result.accepted and not isinstance(visit_id, str):
            log.error("intake accepted a visit start without returning a visit_id")
            visit_id = None
        future.set_result(visit_id if isinstance(visit_id, str) else None)

    def _forget_visits(self, before: datetime) -> None:
        for ref in [r for r, (at, f) in self._visits.items() if at < before and f.done()]:
            del self._visits[ref]


async def _put_or_stop(
    q: asyncio.Queue[_Item | None], item: _Item | None, stop: asyncio.Event
) -> bool:
    """Put ``item`` (waiting while the queue is full); False if ``stop`` was set first."""
    if not q.full():
        q.put_nowait(item)
        return True
    put = asyncio.ensure_future(q.put(item))
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({put, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if put.done():
        return True
    put.cancel()
    return False
