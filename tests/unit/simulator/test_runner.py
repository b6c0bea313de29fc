"""The runner against fake services: visit ids flow from starts to their dependents, lanes keep
order, a stop ends the run promptly; and the simulated clock never runs ahead of the wall.

No test sleeps to let something happen: they hold requests at a gate, freeze the clock, and
wait on conditions (tests.support.poll_until)."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.simulator.model import IntendedReport, Service, simulate
from services.simulator.params import SimParams
from services.simulator.runner import Runner, SimClock
from services.simulator.sender import RetryPolicy, Sender
from shared.city import load_city
from shared.settings import CitySettings
from tests.support import poll_until

CITY = load_city(CitySettings().file)
START = datetime(2026, 11, 26, 6, tzinfo=CITY.zone).astimezone(UTC)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
TOKENS = {f.id: f"token-{f.id}" for f in CITY.facilities} | {"sanitation-city": "token-san"}


class FakeServices:
    """Accepts everything (or refuses visit starts when ``refuse_starts``); issues visit ids."""

    def __init__(self, *, refuse_starts: bool = False, down: bool = False) -> None:
        self.refuse_starts = refuse_starts
        self.down = down
        self.issued: dict[str, str] = {}  # Idempotency-Key of a start -> visit_id
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (host, key, body)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(503, headers={"Retry-After": "1"})
        key = request.headers["Idempotency-Key"]
        body = json.loads(request.content)
        self.requests.append((request.url.host, key, body))
        if request.url.path == "/v1/visits":
            if self.refuse_starts:
                return httpx.Response(422, json={"detail": [{"loc": ["body", "route"]}]})
            visit_id = self.issued.setdefault(key, f"v{len(self.issued)}")
            return httpx.Response(202, json={"event_id": key, "visit_id": visit_id})
        return httpx.Response(202, json={"event_id": key})

    def sender(self) -> Sender:
        transport = httpx.MockTransport(self.handler)
        clients = {
            s: httpx.AsyncClient(transport=transport, base_url=f"http://{s}") for s in Service
        }

        async def no_backoff(_: float) -> None:
            await asyncio.sleep(0)  # only yield: retries are immediate, nothing waits

        return Sender(clients, TOKENS, policy=RetryPolicy(), sleep=no_backoff)


def stream(
    hours: float = 12, facilities: tuple[str, ...] = ("halmtorv", "amager")
) -> list[IntendedReport]:
    end = START + timedelta(hours=hours)
    return list(simulate(CITY, SimParams(), seed=3, start=START, end=end, facilities=facilities))


def fast_clock() -> SimClock:
    return SimClock(START, 1e9, wall=lambda: FAR_FUTURE)


async def test_dependents_carry_the_visit_id_intake_issued_for_their_start() -> None:
    reports = stream()
    fake = FakeServices()
    runner = Runner(reports, fake.sender(), fast_clock(), run_id="r1")
    stats = await runner.run(asyncio.Event())
    total = stats.total()
    assert total.sent == total.accepted == len(reports) and total.failed == 0
    sent = {key: body for _, key, body in fake.requests}
    start_key = {r.visit_ref: runner.key(r) for r in reports if r.visit_ref is not None}
    dependents = [r for r in reports if r.needs_visit]
    assert any(r.event == "supplies.dispensed" for r in dependents)  # crosses services
    for r in dependents:
        assert r.needs_visit is not None
        assert sent[runner.key(r)]["visit_id"] == fake.issued[start_key[r.needs_visit]]
    assert stats.open_visits == sum(r.event == "visit.started" for r in reports) - sum(
        r.event == "visit.ended" for r in reports
    )


async def test_each_lane_sends_in_stream_order() -> None:
    reports = stream()
    fake = FakeServices()
    runner = Runner(reports, fake.sender(), fast_clock(), run_id="r2")
    await runner.run(asyncio.Event())
    seqs: dict[tuple[str, str], list[int]] = defaultdict(list)
    for host, key, _ in fake.requests:
        lane, seq = key.removeprefix("sim-r2-").rsplit("-", 1)
        seqs[(lane, host)].append(int(seq))
    assert all(s == sorted(s) for s in seqs.values())
    assert {host for _, host in seqs} == {"intake", "supply", "incident"}


async def test_when_a_start_is_refused_its_dependents_fail_unsent() -> None:
    reports = stream(hours=3, facilities=("halmtorv",))
    fake = FakeServices(refuse_starts=True)
    stats = await Runner(reports, fake.sender(), fast_clock(), run_id="r3").run(asyncio.Event())
    dependents = sum(r.needs_visit is not None for r in reports)
    starts = sum(r.event == "visit.started" for r in reports)
    assert dependents > 0 and stats.total().failed == starts + dependents
    assert all("visit_id" not in body for _, _, body in fake.requests)


async def test_a_stop_ends_the_run_within_the_grace_period() -> None:
    reports = stream(hours=2, facilities=("halmtorv",))
    fake = FakeServices(down=True)
    stop = asyncio.Event()
    runner = Runner(reports, fake.sender(), fast_clock(), run_id="r4")
    task = asyncio.create_task(runner.run(stop, grace_s=0.2))

    async def retrying() -> bool:
        return runner.stats.total().retried > 0

    await poll_until(retrying, interval=0.01, what="a refused report retried")
    stop.set()
    stats = await asyncio.wait_for(task, 5)
    total = stats.total()
    assert total.accepted == 0 and total.retried > 0
    assert total.unsent == total.sent > 0 and runner.finished


async def test_a_stop_after_the_stream_was_dispatched_ends_once_the_queue_is_delivered() -> None:
    """Regression: the end-of-stream markers in the lane queues must not count as work."""
    reports = stream(hours=6, facilities=("halmtorv",))

    gate = asyncio.Event()  # the services answer nothing until it opens

    async def held(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return FakeServices().handler(request)

    transport = httpx.MockTransport(held)
    clients = {s: httpx.AsyncClient(transport=transport, base_url=f"http://{s}") for s in Service}
    runner = Runner(reports, Sender(clients, TOKENS), fast_clock(), run_id="r6")
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop, grace_s=30))

    async def dispatched() -> bool:  # everything fits in the queues
        return runner.stats.total().sent == len(reports)

    await poll_until(dispatched, interval=0.01, what="the whole stream dispatched")
    assert runner.stats.total().accepted == 0  # held at the gate: none delivered yet
    until = runner.delivered_until()
    assert until is not None and until < reports[-1].at == runner.stats.position
    stop.set()
    gate.set()
    stats = await asyncio.wait_for(task, 10)  # well before the 30 s grace
    assert stats.total().accepted == len(reports) and stats.total().unsent == 0
    assert runner.delivered_until() == reports[-1].at


async def test_a_real_time_run_waits_for_the_clock() -> None:
    """At speed 1 with the clock standing still, only the reports due at its start are sent;
    once the clock moves on, the reports due by then follow (and no more)."""
    reports = stream(hours=3, facilities=("halmtorv",))
    fake = FakeServices()
    t = FakeTime(FAR_FUTURE)
    clock = SimClock(reports[0].at, 1.0, wall=lambda: FAR_FUTURE, monotonic=t.monotonic)
    stop = asyncio.Event()
    runner = Runner(reports, fake.sender(), clock, run_id="r5")
    task = asyncio.create_task(runner.run(stop, 0.5))
    due = [r for r in reports if r.at <= reports[0].at]

    async def sent(n: int) -> bool:
        return runner.stats.total().sent >= n and runner.stats.total().accepted >= n

    await poll_until(lambda: sent(len(due)), interval=0.01, what="the due reports sent")
    assert runner.stats.total().sent == len(due)  # the clock stands: nothing later is sent
    later = reports[len(due) + 2].at  # the clock moves on to the third report not yet due
    t.advance((later - reports[0].at).total_seconds())
    now_due = [r for r in reports if r.at <= later]
    assert len(now_due) > len(due)
    await poll_until(lambda: sent(len(now_due)), what="the reports due by then sent")
    stop.set()
    stats = await asyncio.wait_for(task, 5)
    assert stats.total().sent == len(now_due)


class FakeTime:
    def __init__(self, wall: datetime) -> None:
        self.wall_now = wall
        self.mono = 0.0

    def wall(self) -> datetime:
        return self.wall_now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall_now += timedelta(seconds=seconds)


def test_the_sim_clock_catches_up_then_follows_the_wall_clock() -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    t = FakeTime(now)
    clock = SimClock(now - timedelta(hours=2), 3600, wall=t.wall, monotonic=t.monotonic)
    assert clock.now() == now - timedelta(hours=2) and not clock.real_time()
    assert clock.wait_s(now - timedelta(hours=1)) == pytest.approx(1.0)
    t.advance(1)
    assert clock.now() == now - timedelta(hours=1)
    t.advance(10)  # the fast clock would be 8 h ahead; it stops at the wall clock
    assert clock.now() == t.wall_now and clock.real_time()
    assert clock.wait_s(t.wall_now + timedelta(seconds=30)) == pytest.approx(30.0)
    with pytest.raises(ValueError):
        SimClock(now, 0)
