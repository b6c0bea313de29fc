"""Benchmark 2: HTTP clients posting visits to intake, next to a bare aiokafka producer.

intake runs under uvicorn in its own process (one worker, as deployed). The load generator runs
in this process: a closed loop of ``concurrency`` clients sending a fixed number of
``POST /v1/visits`` (with an ``Idempotency-Key``, as facilities are told to), then an open loop
at a fixed rate (latency from the scheduled instant, so a slow answer delays no later request).
Both run with ``httpx.AsyncClient`` and with a minimal keep-alive client
(:mod:`bench.http_raw`): httpx costs the generator about as much CPU per request as intake
spends, on the same 2 cores. A closed loop without Idempotency-Key shows what the key store
costs. The baseline is a bare producer with the same acks (all, idempotent), the same record (a
visit-started event as intake publishes it) and each send awaited by its caller, in the same two
loops.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from bench.env import SCRAPER, BenchEnv, isolated
from bench.http_raw import RawClient
from bench.kafka_tools import open_loop, raw_produce
from bench.machine import cpu_between, cpu_sample
from bench.server_side import phase_quantiles, scrape_buckets
from bench.stats import summarise
from bench.workload import Encoded, encode
from harness.process import INTAKE_APP
from shared.events import payloads as p
from shared.events.envelope import Envelope, facility_source
from shared.events.vocabulary import Route, Substance
from shared.privacy import Pseudonymiser

VISIT_PATH = "/v1/visits"


class Client(Protocol):
    async def post(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]: ...


#: Connections either client opens at most; requests beyond wait for one (their latency includes
#: the wait).
MAX_CONNECTIONS = 64


class HttpxClient:
    """``httpx.AsyncClient`` posting with at most :data:`MAX_CONNECTIONS` requests inside httpx.

    Requests beyond wait on a semaphore here, not in httpcore's connection pool: httpcore 1.0
    re-scans its queued requests and connections on every assignment pass (O(requests x
    connections), encode/httpcore#1035), so once a fixed-rate run fell behind, the pool's own
    bookkeeping took the load generator's core and the run collapsed (quiet13, quiet15: ~0.9
    cores, thousands of timeouts; quiet16 did not finish its 30 s run in 10 minutes). The wait
    on the semaphore is part of the latency, as the wait in the pool was."""

    def __init__(self, client: httpx.AsyncClient, max_in_flight: int = MAX_CONNECTIONS) -> None:
        self._client = client
        self._slots = asyncio.Semaphore(max_in_flight)

    async def post(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        async with self._slots:
            r = await self._client.post(path, json=body, headers=headers)
        return r.status_code, r.json()


def httpx_client(url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
    )
    return httpx.AsyncClient(base_url=url, timeout=30, limits=limits)


def raw_client(url: str) -> RawClient:
    parts = urlsplit(url)
    return RawClient(parts.hostname or "127.0.0.1", parts.port or 80, MAX_CONNECTIONS)


class Poster:
    """Builds and sends visit-started requests round robin over the city's facilities."""

    def __init__(self, env: BenchEnv, client: Client, idempotency: bool = True) -> None:
        self.env = env
        self.client = client
        self.idempotency = idempotency
        self.facilities = [f.id for f in env.city.facilities]
        self.statuses: dict[int, int] = {}

    def request(self, i: int) -> tuple[dict[str, Any], dict[str, str]]:
        fac = self.facilities[i % len(self.facilities)]
        body = {
            "facility_id": fac,
            "occurred_at": datetime.now(UTC).isoformat(),
            "client_code": f"C-{i % 997:04d}",
            "booth": 1 + i % 12,
            "substances": ["heroin"] if i % 3 else ["heroin", "cocaine"],
            "route": "inject" if i % 4 else "smoke",
        }
        headers = {"Authorization": f"Bearer {self.env.tokens[fac]}"}
        if self.idempotency:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        return body, headers

    async def post(self, i: int) -> int:
        body, headers = self.request(i)
        status, _ = await self.client.post(VISIT_PATH, body, headers)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return status


async def closed_loop(
    poster: Poster, n: int, concurrency: int, pids: list[int] | None = None
) -> dict[str, Any]:
    """``concurrency`` clients, each sending its next request when the previous is answered,
    ``n`` requests in all. A request that fails (connection reset, unreadable answer) is counted
    under ``failures`` by kind, as in :func:`fixed_rate`, and never stops the run (one reset
    connection once aborted a whole ``make bench``); only 202s enter the latencies."""
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            try:
                status = await poster.post(i)
            except (OSError, EOFError, ValueError, httpx.HTTPError) as exc:
                failures[type(exc).__name__] += 1
                continue
            if status == 202:
                latencies.append(time.perf_counter() - t0)

    poster.statuses.clear()
    c0 = cpu_sample(pids or [])
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    result = _result(poster, latencies, seconds)
    result["requests"] += sum(failures.values())
    result["errors"] += sum(failures.values())
    return result | {"failures": dict(sorted(failures.items()))} | _cpu(c0, pids)


#: A request of the fixed-rate run not answered this many seconds after its intended send time
#: is abandoned and counted as an error (``timeout``): a stalled service ends the run.
REQUEST_TIMEOUT_S = 10.0


async def fixed_rate(
    poster: Poster,
    rate: float,
    duration_s: float,
    pids: list[int] | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> dict[str, Any]:
    """Open loop: request ``i`` is due at ``start + i / rate`` whatever the earlier ones are
    doing; its latency runs from that intended instant (waiting for a connection included).
    A request that fails (connection reset, timeout after ``timeout_s``, unreadable answer) is
    counted under ``failures`` by kind, never stops the run; only 202s enter the latencies."""
    latencies: list[float] = []
    failures: Counter[str] = Counter()

    async def one(i: int, scheduled: float) -> None:
        left = scheduled + timeout_s - time.perf_counter()
        try:
            status = await asyncio.wait_for(poster.post(i), timeout=max(left, 0.001))
        except TimeoutError:
            failures["timeout"] += 1
            return
        except (OSError, EOFError, ValueError, httpx.HTTPError) as exc:
            failures[type(exc).__name__] += 1
            return
        if status == 202:
            latencies.append(time.perf_counter() - scheduled)

    poster.statuses.clear()
    c0 = cpu_sample(pids or [])
    started = time.perf_counter()
    await open_loop(int(rate * duration_s), rate, one)
    seconds = time.perf_counter() - started
    result = _result(poster, latencies, seconds)
    result["requests"] += sum(failures.values())
    result["errors"] += sum(failures.values())
    return (
        {"offered_rate_per_s": rate, "request_timeout_s": timeout_s}
        | result
        | {"failures": dict(sorted(failures.items()))}
        | _cpu(c0, pids)
    )


def _cpu(c0: Any, pids: list[int] | None) -> dict[str, Any]:
    """Cores used by the service (first pid) and the load generator (second), machine busy."""
    if not pids:
        return {}
    cpu = cpu_between(c0, cpu_sample(pids))
    cores = cpu["process_cores"]
    return {
        "service_cores": cores[str(pids[0])],
        "client_cores": cores[str(pids[1])] if len(pids) > 1 else None,
        "machine_busy_share": cpu["machine_busy_share"],
    }


def _result(poster: Poster, latencies: list[float], seconds: float) -> dict[str, Any]:
    errors = sum(n for status, n in poster.statuses.items() if status != 202)
    return (
        {"requests": len(latencies) + errors, "errors": errors, "seconds": round(seconds, 2)}
        | summarise(latencies, seconds)
        | {"statuses": {str(k): v for k, v in sorted(poster.statuses.items())}}
    )


async def intake_at_rate(
    env: BenchEnv,
    rate: float,
    seconds: float,
    intake_env: dict[str, str] | None = None,
    warmup: int = 200,
) -> dict[str, Any]:
    """Start intake (``intake_env``: e.g. its own Kafka identity) in ``env``, warm it up with a
    closed loop of ``warmup`` requests, then :func:`fixed_rate` with the raw client."""
    proc = env.service("intake", INTAKE_APP, **(intake_env or {})).start()
    raw = raw_client(proc.url)
    token = env.tokens[SCRAPER]
    histograms = {  # what intake measured itself: the whole request, the Kafka acknowledgement
        # POST: the visits of this phase only (the scrapes and health checks are GETs)
        "server_http": ("dcr_http_request_duration_seconds", {"method": "POST"}),
        "server_kafka_publish": ("dcr_kafka_publish_duration_seconds", {}),
    }
    try:
        await proc.wait_healthy(timeout=90)
        poster = Poster(env, raw)
        await closed_loop(poster, warmup, 8)
        before = {k: await scrape_buckets(proc.url, token, *h) for k, h in histograms.items()}
        result = await fixed_rate(poster, rate, seconds, [proc.pid, os.getpid()])
        for key, (metric, labels) in histograms.items():
            try:
                after = await scrape_buckets(proc.url, token, metric, labels)
            except httpx.HTTPError as exc:  # the figures above stand without it
                result[key] = {"error": f"{type(exc).__name__}: /metrics not answered"}
                continue
            result[key] = phase_quantiles(before[key], after, (0.5, 0.99))
        return result
    finally:
        raw.close()
        proc.terminate()


def visit_records(env: BenchEnv, n: int) -> list[Encoded]:
    """Records like intake's (a visit-started event per facility, real encoding)."""
    pseudonymiser = Pseudonymiser(env.secret.encode())
    rng = random.Random(2)  # noqa: S311 - a workload, not a secret
    out: list[Encoded] = []
    facilities = [f.id for f in env.city.facilities]
    for i in range(n):
        fac = facilities[i % len(facilities)]
        data = p.VisitStarted(
            visit_id=uuid.uuid4().hex,
            client_pseudonym=pseudonymiser.pseudonym(fac, f"C-{i % 997:04d}"),
            booth=1 + i % 12,
            substances=(Substance.HEROIN,) if i % 3 else (Substance.HEROIN, Substance.COCAINE),
            route=Route.INJECT if i % 4 else Route.SMOKE,
        )
        env_ = Envelope.wrap(
            data,
            id=uuid.UUID(int=rng.getrandbits(128), version=4),
            source=facility_source(fac),
            time=datetime.now(UTC),
        )
        out.append(encode(env_))
    return out


async def ingest(
    *,
    requests: int,
    concurrency: int,
    rate: float,
    rate_seconds: float,
    facilities: int,
    keep_logs: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with isolated("ingest", facilities, keep_logs) as env:
        proc = env.service("intake", INTAKE_APP).start()
        raw = raw_client(proc.url)
        try:
            await proc.wait_healthy(timeout=60)
            pids = [proc.pid, os.getpid()]
            async with httpx_client(proc.url) as hx:
                clients: dict[str, Client] = {"httpx": HttpxClient(hx), "raw": raw}
                for name, client in clients.items():
                    poster = Poster(env, client)
                    print(f"bench: ingest ({name} client) warm-up", file=sys.stderr)
                    await closed_loop(poster, min(500, requests), concurrency)
                    print(f"bench: ingest closed loop, {concurrency} clients", file=sys.stderr)
                    out[f"http_closed_loop_{name}"] = await closed_loop(
                        poster, requests, concurrency, pids
                    )
                    print(
                        f"bench: ingest fixed rate {rate}/s for {rate_seconds} s", file=sys.stderr
                    )
                    out[f"http_fixed_rate_{name}"] = await fixed_rate(
                        poster, rate, rate_seconds, pids
                    )
                out["http_closed_loop_raw_without_idempotency_key"] = await closed_loop(
                    Poster(env, raw, idempotency=False), requests, concurrency, pids
                )
        finally:
            raw.close()
            proc.terminate()
        print("bench: bare producer (baseline)", file=sys.stderr)
        records = visit_records(env, max(requests, int(rate * rate_seconds)))
        topic = env.topic("dcr.visits")
        raw_closed = await raw_produce(
            env.bootstrap, topic, records[:requests], concurrency=concurrency
        )
        raw_fixed = await raw_produce(
            env.bootstrap,
            topic,
            records[: int(rate * rate_seconds)],
            concurrency=concurrency,
            rate=rate,
        )
    value_bytes = len(records[0][2])
    header_bytes = sum(len(k) + len(v) for k, v in records[0][3])
    baseline = float(raw_closed["throughput_per_s"])
    return {
        "params": {
            "requests": requests,
            "concurrency": concurrency,
            "rate_per_s": rate,
            "rate_seconds": rate_seconds,
            "facilities": facilities,
            "record_value_bytes": value_bytes,
            "record_header_bytes": header_bytes,
        },
        **out,
        "raw_producer_closed_loop": raw_closed,
        "raw_producer_fixed_rate": {"offered_rate_per_s": rate} | raw_fixed,
        "ratio_httpx": round(out["http_closed_loop_httpx"]["throughput_per_s"] / baseline, 4)
        if baseline
        else 0.0,
        "ratio_raw_client": round(out["http_closed_loop_raw"]["throughput_per_s"] / baseline, 4)
        if baseline
        else 0.0,
    }
