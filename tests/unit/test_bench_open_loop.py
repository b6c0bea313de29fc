"""The benchmark's open-loop HTTP generator survives what an overloaded service does (resets,
stalls, 503s) and reports it, and latencies run from the intended send time; the server-side
histogram difference gives the quantiles of one phase only."""

from __future__ import annotations

import asyncio
import math
import time
from types import SimpleNamespace
from typing import Any, cast

from bench.env import BenchEnv, bench_city
from bench.ingest import Poster, closed_loop, fixed_rate
from bench.server_side import phase_quantiles


class Misbehaving:
    """Request i: every 5th resets the connection, every 7th never answers (unless ``stalls``
    is False), every 11th is refused with 503; the others are accepted after ``delay_s``."""

    def __init__(self, delay_s: float, stalls: bool = True) -> None:
        self.delay_s = delay_s
        self.stalls = stalls
        self.calls = 0

    async def post(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        i = self.calls
        self.calls += 1
        if i % 5 == 4:
            raise ConnectionResetError("connection reset by peer")
        if self.stalls and i % 7 == 6:
            await asyncio.Event().wait()  # a stalled request: only the deadline ends it
        await asyncio.sleep(self.delay_s)  # a fake answer time: the clock still runs
        return (503, {}) if i % 11 == 10 else (202, {})


def _poster(client: Misbehaving) -> Poster:
    city = bench_city(2)
    env = SimpleNamespace(city=city, tokens={f.id: "t" for f in city.facilities})
    return Poster(cast(BenchEnv, env), client)


async def test_failures_are_counted_by_kind_and_never_stop_the_run() -> None:
    client = Misbehaving(delay_s=0.01)
    started = time.perf_counter()
    result = await fixed_rate(_poster(client), rate=200, duration_s=0.5, timeout_s=0.3)
    elapsed = time.perf_counter() - started
    n = 100
    resets = sum(1 for i in range(n) if i % 5 == 4)
    stalls = sum(1 for i in range(n) if i % 7 == 6 and i % 5 != 4)
    refused = sum(1 for i in range(n) if i % 11 == 10 and i % 5 != 4 and i % 7 != 6)
    assert client.calls == n
    assert result["requests"] == n
    assert result["failures"] == {"ConnectionResetError": resets, "timeout": stalls}
    assert result["statuses"] == {"202": n - resets - stalls - refused, "503": refused}
    assert result["errors"] == resets + stalls + refused
    assert elapsed < 0.5 + 0.3 + 1.0, "a stalled request held the run beyond its deadline"


async def test_a_closed_loop_counts_reset_connections_and_goes_on() -> None:
    client = Misbehaving(delay_s=0.001, stalls=False)
    result = await closed_loop(_poster(client), n=60, concurrency=4)
    resets = sum(1 for i in range(60) if i % 5 == 4)
    refused = sum(1 for i in range(60) if i % 11 == 10 and i % 5 != 4)
    assert client.calls == 60 and result["requests"] == 60
    assert result["failures"] == {"ConnectionResetError": resets}
    assert result["statuses"] == {"202": 60 - resets - refused, "503": refused}
    assert result["errors"] == resets + refused


async def test_a_slow_service_shows_its_queue_in_the_latencies() -> None:
    # 40 requests due within 0.2 s, but the service answers one at a time in 20 ms each: the
    # open loop keeps sending on schedule (a closed loop would wait and report ~20 ms), the last
    # is answered ~0.8 s after it was due, and the figures, from each request's due instant,
    # must show that queue.
    gate = asyncio.Lock()

    class OneAtATime(Misbehaving):
        async def post(
            self, path: str, body: dict[str, Any], headers: dict[str, str]
        ) -> tuple[int, dict[str, Any]]:
            async with gate:
                await asyncio.sleep(self.delay_s)  # a fake answer time: the clock still runs
            return 202, {}

    result = await fixed_rate(
        _poster(OneAtATime(delay_s=0.02)), rate=200, duration_s=0.2, timeout_s=5
    )
    assert result["statuses"] == {"202": 40}
    assert result["max_ms"] > 500
    assert result["p50_ms"] > 150


def test_phase_quantiles_count_only_the_phase() -> None:
    before = {0.01: 100.0, 0.1: 100.0, 1.0: 100.0, math.inf: 100.0}  # warm-up: all fast
    after = {0.01: 100.0, 0.1: 150.0, 1.0: 198.0, math.inf: 200.0}
    q = phase_quantiles(before, after, (0.5, 0.99))
    assert q == {"count": 100, "p50_ms_at_most": 100.0, "p99_ms_at_most": "> 1000"}
    assert phase_quantiles(after, after, (0.5,)) == {"count": 0, "p50_ms_at_most": None}
