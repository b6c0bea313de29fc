"""Helpers for projection integration tests: the service as a real process (kill -9 able),
producing events straight to Kafka, waiting until the projection caught up, comparing tables
and comparing every read surface against the independent oracle: the internal read API
(district and city days, rooms, street collections, stock, live, alerts) and the public API
of released days (:func:`public_api`, :func:`public_mismatches`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from harness.process import PROJECTION_APP, ServiceProcess
from services.projection.public_app import create_app as public_app
from services.projection.settings import ProjectionSettings
from services.projection.store import READ_MODEL_TABLES
from shared.events.envelope import Envelope, to_headers, to_value
from shared.kafka.security import Target, target_kwargs
from shared.kafka.topics import EVENT_TOPICS
from tests.support import TestEnv, ops_auth, poll_until, read_topic, serve
from tests.unit.projection.factory import CITY
from tests.unit.projection.oracle import CITY_TABLE, Oracle, normalise, public_violations

GROUP = "dcr-projection"


class ProjectionProcess(ServiceProcess):
    """``uvicorn services.projection.app:create_app --factory`` in its own process."""

    def __init__(self, where: TestEnv, log_dir: Path, name: str = "projection", **env: str) -> None:
        super().__init__(log_dir, name, PROJECTION_APP, env=env, base=where.env())

    def start(self) -> ProjectionProcess:
        super().start()
        return self


async def produce(bootstrap: str, prefix: str, events: Iterable[Envelope]) -> int:
    """Publish events as the ingest services do (binary CloudEvents, key = facility/district)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                prefix + e.topic,
                value=to_value(e),
                key=e.key.encode(),
                headers=[(k, v.encode()) for k, v in to_headers(e).items()],
            )
            for e in events
        ]
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


async def produce_raw(
    bootstrap: str,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> tuple[int, int]:
    """One raw record; returns its (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        md = await producer.send_and_wait(topic, value=value, key=key, headers=list(headers))
        return md.partition, md.offset
    finally:
        await producer.stop()


async def end_offsets(bootstrap: Target, prefix: str) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(**target_kwargs(bootstrap), group_id=None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # every topic, not only subscribed
        tps = [
            TopicPartition(prefix + t, p)
            for t in EVENT_TOPICS
            for p in consumer.partitions_for_topic(prefix + t) or ()
        ]
        ends = await consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): int(o) for tp, o in ends.items()}
    finally:
        await consumer.stop()


async def stored_offsets(dsn: str) -> dict[tuple[str, int], int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT topic, partition, next_offset FROM projection_offsets "
            "WHERE consumer_group = $1",
            GROUP,
        )
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
    finally:
        await conn.close()


async def applied_records(dsn: str) -> int:
    return sum((await stored_offsets(dsn)).values())


async def wait_caught_up(dsn: str, bootstrap: Target, prefix: str, timeout: float = 60) -> None:
    """Until the stored offsets equal the end of every event partition."""
    ends = await end_offsets(bootstrap, prefix)

    async def caught_up() -> bool:
        stored = await stored_offsets(dsn)
        return all(stored.get(tp, 0) >= end for tp, end in ends.items())

    await poll_until(caught_up, timeout=timeout, interval=0.1, what="projection caught up")


async def rows(dsn: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """The rows of one query, as tuples."""
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def snapshot(dsn: str, tables: Sequence[str] = READ_MODEL_TABLES) -> dict[str, list[Any]]:
    """Every row of the tables, sorted (for exact comparison)."""
    conn = await asyncpg.connect(dsn)
    try:
        out: dict[str, list[Any]] = {}
        for t in tables:
            rows = await conn.fetch(f"SELECT * FROM {t}")
            out[t] = sorted((tuple(r.values()) for r in rows), key=repr)
        return out
    finally:
        await conn.close()


async def log_records(bootstrap: str, prefix: str) -> list[tuple[dict[str, bytes], bytes | None]]:
    """Every record of the event topics as (headers, value), in log order per partition, for
    the oracle to decode itself (Oracle.feed_records)."""
    out: list[tuple[dict[str, bytes], bytes | None]] = []
    for t in EVENT_TOPICS:
        records = await read_topic(bootstrap, prefix + t)
        records.sort(key=lambda r: (r.partition, r.offset))
        out += [(r.headers, r.value) for r in records]
    return out


async def api_days(
    client: httpx.AsyncClient,
    districts: Sequence[str],
    start: date,
    end: date,
    public: bool = False,
) -> dict[tuple[str, date], dict[str, Any]]:
    prefix = "/v1/public" if public else "/v1"
    out: dict[tuple[str, date], dict[str, Any]] = {}
    for d in districts:
        r = await client.get(
            f"{prefix}/districts/{d}/daily",
            params={"from": start.isoformat(), "to": end.isoformat()},
        )
        assert r.status_code == 200, r.text
        for day in r.json()["days"]:
            figures = normalise(day)
            if figures:
                out[(d, date.fromisoformat(day["day"]))] = figures
    return out


async def _get(client: httpx.AsyncClient, path: str, **params: str) -> dict[str, Any]:
    r = await client.get(path, params=params)
    assert r.status_code == 200, (path, r.text)
    body: dict[str, Any] = r.json()
    return body


async def surface_mismatches(
    client: httpx.AsyncClient, oracle: Oracle, start: date, end: date
) -> list[str]:
    """Where the read API differs from the oracle, over every internal read surface: district
    days, the city summary, every room's days, street collections, every facility's stock and
    live figures, the alerts. (The public figures of :8005: :func:`public_mismatches`.)"""
    out: list[str] = []
    span = {"from": start.isoformat(), "to": end.isoformat()}
    districts = [d.id for d in oracle.city.districts]
    in_range = lambda k: start <= k <= end  # noqa: E731

    expected = {k: v for k, v in oracle.district_days().items() if in_range(k[1])}
    got = await api_days(client, districts, start, end)
    out += [f"district {k}: API {got.get(k)} != {expected.get(k)}" for k in _diff(got, expected)]

    city = {d: v for d, v in oracle.city_days().items() if in_range(d)}
    body = await _get(client, "/v1/city/summary", **span)
    got_city = {date.fromisoformat(d["day"]): normalise(d) for d in body["days"]}
    got_city = {d: v for d, v in got_city.items() if v}
    out += [f"city {d}: API {got_city.get(d)} != {city.get(d)}" for d in _diff(got_city, city)]

    for f in oracle.city.facilities:
        body = await _get(client, f"/v1/rooms/{f.id}/daily", **span)
        got_room = {date.fromisoformat(d["day"]): normalise(d) for d in body["days"]}
        got_room = {d: v for d, v in got_room.items() if v}
        room = {d: v for d, v in oracle.room_days(f.id).items() if in_range(d)}
        out += [
            f"room {f.id} {d}: API {got_room.get(d)} != {room.get(d)}"
            for d in _diff(got_room, room)
        ]

    body = await _get(client, "/v1/street-collections", **span)
    got_street = {
        (c["district"], c["area"], date.fromisoformat(c["day"])): (
            c["reports"],
            c["needles"],
            c["kg"],
        )
        for c in body["collections"]
    }
    street = {k: v for k, v in oracle.street_collections().items() if in_range(k[2])}
    out += [
        f"street {k}: API {got_street.get(k)} != {street.get(k)}" for k in _diff(got_street, street)
    ]

    stale_hours = ProjectionSettings().stale_visit_hours
    for f in oracle.city.facilities:
        body = await _get(client, f"/v1/facilities/{f.id}/stock")
        stock = {i["item"]: i["on_hand"] for i in body["items"]}
        if stock != oracle.stock(f.id):
            out.append(f"stock {f.id}: API {stock} != {oracle.stock(f.id)}")
        before = datetime.now(UTC)
        live = await _get(client, f"/v1/facilities/{f.id}/live")
        after = datetime.now(UTC)
        shown = {k: live[k] for k in ("booths_in_use", "visits_today", "refusals_today")}
        last = live["last_event_time"]
        shown["last_event_time"] = datetime.fromisoformat(last) if last else None
        wanted = [oracle.facility_live(f.id, t, stale_hours) for t in (before, after)]
        if shown not in wanted:  # either instant of the request: the day may turn meanwhile
            out.append(f"live {f.id}: API {shown} != {wanted[0]}")

    body = await _get(client, "/v1/alerts", limit="1000")
    alert_ids = {a["alert_id"] for a in body["alerts"]}
    if alert_ids != {a["alert_id"] for a in oracle.alerts.values()}:
        out.append(f"alerts: API {sorted(alert_ids)} != oracle's")
    return out


def _diff(got: dict[Any, Any], expected: dict[Any, Any]) -> list[Any]:
    return sorted((k for k in set(got) | set(expected) if got.get(k) != expected.get(k)), key=str)


def released_at(day: date, oracle: Oracle) -> datetime:
    """When ``day`` becomes public by the published rule (docs/public-figures.md): the next
    day at 06:00 in the city's zone (the default release settings)."""
    return datetime.combine(day + timedelta(days=1), time(6), oracle.city.zone)


@contextlib.asynccontextmanager
async def public_api(
    env: TestEnv, oracle: Oracle, first: date, last: date
) -> AsyncIterator[httpx.AsyncClient]:
    """The public app (in-process, port 8005's app) of ``env`` publishing from ``first`` on,
    its clock a minute after ``last`` is released. Ask it only once the read models are
    complete: a released table is decided and frozen at its first request."""
    config = env.projection(ProjectionSettings(public_since=first))
    now = released_at(last, oracle) + timedelta(minutes=1)
    async with serve(public_app(clock=lambda: now, config=config)) as client:
        yield client


async def public_mismatches(
    public: httpx.AsyncClient, oracle: Oracle, start: date, end: date
) -> list[str]:
    """Where the released public tables of the days in [start, end] break the published rule
    against the oracle's own unsuppressed figures (:func:`~tests.unit.projection.oracle.
    public_violations`: shown cells true, small counts hidden, quantities of things shown, no
    hidden cell narrowed below the threshold by a reader); a day not answered or withheld is
    a mismatch too (a day with nothing released before always has a plan)."""
    threshold = ProjectionSettings().suppression_threshold
    out: list[str] = []
    day = start
    while day <= end:
        r = await public.get(f"/v1/public/day/{day}")
        if r.status_code != 200:
            out.append(f"public {day}: {r.status_code} {r.text}")
        elif r.json()["withheld"] or r.json()["suppression_threshold"] != threshold:
            out.append(f"public {day}: withheld or another threshold: {r.json()}")
        else:
            tables = {CITY_TABLE if t == "city" else t: v for t, v in r.json()["tables"].items()}
            truth = oracle.public_truth(day)
            out += [f"public {day}: {v}" for v in public_violations(tables, truth, threshold)]
        day += timedelta(days=1)
    return out


async def assert_api_matches_oracle(
    client: httpx.AsyncClient,
    oracle: Oracle,
    start: date,
    end: date,
    timeout: float = 30,
    public: httpx.AsyncClient | None = None,
) -> None:
    """Poll until every internal read surface for the days in [start, end] agrees with the
    oracle (:func:`surface_mismatches`); then, given the ``public`` app (:func:`public_api`),
    check its released days once (:func:`public_mismatches`). Fail with the differences."""
    last: list[str] = []

    async def agrees() -> bool:
        nonlocal last
        try:
            last = await surface_mismatches(client, oracle, start, end)
        except AssertionError as exc:  # a read refused or failed: say which, keep polling
            last = [f"read failed: {exc}"]
        return not last

    try:
        await poll_until(agrees, timeout=timeout, interval=0.2, what="API equal to the oracle")
    except AssertionError:
        raise AssertionError(f"API != oracle in {len(last)} place(s): {last}") from None
    if public is not None:
        wrong = await public_mismatches(public, oracle, start, end)
        assert not wrong, f"public API != oracle's rule in {len(wrong)} place(s): {wrong}"


async def assert_api_matches_events(env: TestEnv, url: str, events: Sequence[Envelope]) -> None:
    """:func:`assert_api_matches_oracle` for the oracle fed ``events``, over all their days, read
    from the projection at ``url`` as the ops role."""
    oracle = Oracle(CITY).feed(events)
    days = [k[1] for k in oracle.district_days()]
    async with httpx.AsyncClient(base_url=url, timeout=10, headers=ops_auth(env)) as client:
        await assert_api_matches_oracle(client, oracle, min(days), max(days))
