"""Helpers for projection integration tests: the service as a real process (kill -9 able),
producing events straight to Kafka, waiting until the projection caught up, comparing tables
and comparing the read API against the independent oracle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.projection.store import READ_MODEL_TABLES
from shared.events.envelope import Envelope, decode, to_headers, to_value
from shared.kafka.topics import EVENT_TOPICS
from tests.process import PROJECTION_APP, ServiceProcess
from tests.support import poll_until, read_topic
from tests.unit.projection.oracle import Oracle, normalise

GROUP = "dcr-projection"


class ProjectionProcess(ServiceProcess):
    """``uvicorn services.projection.app:create_app --factory`` in its own process."""

    def __init__(self, log_dir: Path, name: str = "projection", **env: str) -> None:
        super().__init__(log_dir, name, PROJECTION_APP, env=env)

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


async def end_offsets(bootstrap: str, prefix: str) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
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


async def wait_caught_up(dsn: str, bootstrap: str, prefix: str, timeout: float = 60) -> None:
    """Until the stored offsets equal the end of every event partition."""
    ends = await end_offsets(bootstrap, prefix)

    async def caught_up() -> bool:
        stored = await stored_offsets(dsn)
        return all(stored.get(tp, 0) >= end for tp, end in ends.items())

    await poll_until(caught_up, timeout=timeout, interval=0.1, what="projection caught up")


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


async def log_events(bootstrap: str, prefix: str) -> list[Envelope]:
    """Every decodable event in the event topics (for the oracle), in log order per partition."""
    out: list[Envelope] = []
    for t in EVENT_TOPICS:
        records = await read_topic(bootstrap, prefix + t)
        records.sort(key=lambda r: (r.partition, r.offset))
        for r in records:
            try:
                out.append(decode(r.headers, r.value))
            except ValueError:
                continue
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


async def assert_api_matches_oracle(
    client: httpx.AsyncClient, oracle: Oracle, start: date, end: date, timeout: float = 30
) -> None:
    """Poll until the district days in [start, end] equal the oracle's (then assert)."""
    districts = [d.id for d in oracle.city.districts]
    expected = {k: v for k, v in oracle.district_days().items() if start <= k[1] <= end}
    deadline = time.monotonic() + timeout
    while True:
        got = await api_days(client, districts, start, end)
        if got == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    diff = {
        k: (got.get(k), expected.get(k))
        for k in set(got) | set(expected)
        if got.get(k) != expected.get(k)
    }
    assert got == expected, f"API != oracle for {len(diff)} day(s): {diff}"
