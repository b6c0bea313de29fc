"""Helpers for tests: condition polling, in-process apps, Kafka readers, test tokens, and the
isolated environments (topic prefix + database) integration tests run in."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from shared.db.migrate import apply_migrations
from shared.kafka.admin import ensure_topics
from shared.kafka.security import Target, target_kwargs, target_name
from tests.clock import accept_future_timestamps, requested_instants

T = TypeVar("T")


async def poll_until(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = 15.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Call ``check`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


async def drop_database(admin: asyncpg.Connection, name: str, timeout: float = 30.0) -> None:
    """``DROP DATABASE ... WITH (FORCE)``, retried while a superuser backend (autovacuum after a
    bulk load, typically on a fresh cluster) is connected to it: the test role may not terminate
    those, but they finish on their own."""

    async def dropped() -> bool:
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
            return False
        return True

    await poll_until(dropped, timeout=timeout, interval=0.5, what=f"database {name} dropped")


@asynccontextmanager
async def serve(
    app: FastAPI, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan (real clients) and give an HTTP client talking to it in-process
    (sending ``headers``, e.g. a reader's bearer token, with every request)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers
        ) as client:
            yield client


#: The session's Prometheus-scraper and ops tokens (set by tests/conftest.py), for helpers that
#: read ``/metrics`` or the read API of a service process without a TestEnv at hand.
SCRAPE_TOKEN_ENV = "DCR_TEST_SCRAPE_TOKEN"
OPS_TOKEN_ENV = "DCR_TEST_OPS_TOKEN"


def scrape_auth() -> dict[str, str]:
    """``Authorization`` for ``/metrics`` with the session's scraper token."""
    return {"Authorization": f"Bearer {os.environ[SCRAPE_TOKEN_ENV]}"}


def ops_auth() -> dict[str, str]:
    """``Authorization`` for the internal read API with the session's ops token."""
    return {"Authorization": f"Bearer {os.environ[OPS_TOKEN_ENV]}"}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


async def read_topic(bootstrap: str, topic: str) -> list[Record]:
    """Every record currently in ``topic`` (all partitions), read from the beginning."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or set())
        ]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or set())
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        out: list[Record] = []
        remaining = {tp for tp in partitions if end[tp] > 0}
        deadline = time.monotonic() + 30
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, msgs in batch.items():
                for m in msgs:
                    out.append(
                        Record(m.topic, m.partition, m.offset, m.key, m.value, dict(m.headers))
                    )
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return out
    finally:
        await consumer.stop()


def auth(token: str, key: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


@dataclass(frozen=True)
class TestEnv:
    """Where a test's services live: broker, topic prefix, database, clear tokens."""

    __test__ = False  # not a test class

    bootstrap: str
    topic_prefix: str
    dsn: str
    tokens: dict[str, str]  # principal id -> clear token

    def topic(self, name: str) -> str:
        return self.topic_prefix + name


async def delete_topics(bootstrap: Target, prefix: str) -> None:
    """Remove the topics named ``prefix*`` so test runs do not pile up on a long-lived broker."""
    admin = AIOKafkaAdminClient(**target_kwargs(bootstrap))
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


@asynccontextmanager
async def isolated_env(
    base: TestEnv,
    monkeypatch: pytest.MonkeyPatch | None = None,
    *,
    label: str = "ptest",
    bootstrap: Target | None = None,
    drop_topics: bool = False,
    replication: int = 1,
) -> AsyncIterator[TestEnv]:
    """A fresh migrated database and topic prefix (on ``bootstrap``, default ``base``'s broker;
    a secured broker as its admin's KafkaSettings; topics with ``replication`` copies) with
    ``base``'s tokens. With ``monkeypatch``, DCR_DB_DSN / DCR_KAFKA_TOPIC_PREFIX point at them
    meanwhile (for apps started in-process or as children)."""
    run = uuid.uuid4().hex[:10]
    server, _ = base.dsn.rsplit("/", 1)
    db_name = f"dcr_{label}_{run}"
    dsn = f"{server}/{db_name}"
    prefix = f"{label}-{run}."
    broker = bootstrap or base.bootstrap
    admin = await asyncpg.connect(base.dsn)
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    try:
        await apply_migrations(dsn)
        await ensure_topics(broker, 6, replication=replication, prefix=prefix)
        if requested_instants() is not None:  # a date run: this process may be in the future
            await accept_future_timestamps(broker, prefix)
        if monkeypatch is not None:
            monkeypatch.setenv("DCR_DB_DSN", dsn)
            monkeypatch.setenv("DCR_KAFKA_TOPIC_PREFIX", prefix)
        yield TestEnv(target_name(broker), prefix, dsn, base.tokens)
    finally:
        await drop_database(admin, db_name)
        await admin.close()
        if drop_topics:
            await delete_topics(broker, prefix)


def flatten_table(table: dict[str, Any]) -> dict[str, Any]:
    """A figures table with each breakdown spread into ``breakdown.key`` cells."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update({f"{k}.{key}": n for key, n in v.items()})
        else:
            out[k] = v
    return out


def auth_failures(exposition: str) -> Counter[tuple[str, str]]:
    """``dcr_auth_failures_total`` per (service, reason) in a /metrics exposition."""
    out: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == "dcr_auth_failures_total":
                out[(s.labels["service"], s.labels["reason"])] += int(s.value)
    return out
