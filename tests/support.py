"""Helpers for tests: in-process apps, Kafka readers, test tokens, and the isolated
environments (topic prefix + database) integration tests run in, on the platform harness
(``harness/``: polling, processes, isolation; re-exported here for the tests that import them)."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from harness.isolation import (
    Isolation,
    delete_topics,
    drop_database,
    isolated,
    settings_variables,
)
from harness.poll import poll_until
from services.incident.settings import NotifySettings
from services.incident.workers import IncidentConfig
from services.projection.bootstrap import ProjectionConfig
from services.projection.settings import ProjectionSettings
from shared.bootstrap import Platform
from shared.ingest.app import IngestConfig
from shared.kafka.security import Target, target_name
from shared.settings import (
    AuthSettings,
    DatabaseSettings,
    Environment,
    KafkaSettings,
    SecuritySettings,
)
from tests.clock import accept_future_timestamps, requested_instants

__all__ = ["delete_topics", "drop_database", "poll_until"]


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


def scrape_auth(env: TestEnv) -> dict[str, str]:
    """``Authorization`` for ``/metrics`` with ``env``'s Prometheus-scraper token."""
    return {"Authorization": f"Bearer {env.tokens['prometheus']}"}


def ops_auth(env: TestEnv) -> dict[str, str]:
    """``Authorization`` for the internal read API with ``env``'s ops token."""
    return {"Authorization": f"Bearer {env.tokens['ops']}"}


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
class RunSettings:
    """The test run's own settings, chosen once by the session fixture (tests/conftest.py) and
    shared by every environment of the run: the tokens file (digests of :attr:`TestEnv.tokens`)
    and a random pseudonym secret, in ``DCR_ENV=test``, the drug alert notifier off (a test
    that provides receivers turns it on). Values, never put in ``os.environ``."""

    tokens_file: Path
    pseudonym_secret: SecretStr

    def auth(self) -> AuthSettings:
        return AuthSettings(tokens_file=self.tokens_file)

    def security(self) -> SecuritySettings:
        return SecuritySettings(env=Environment.TEST, pseudonym_secret=self.pseudonym_secret)

    def notify(self) -> NotifySettings:
        """The notifier off: never towards a developer's mail sink (tests/integration/notify
        turns it on with its own receivers)."""
        return NotifySettings(DCR_ENV=Environment.TEST, enabled=False)

    def variables(self) -> dict[str, str]:
        """The same settings as a child process's ``DCR_*`` variables."""
        return settings_variables(self.auth(), self.security(), self.notify())


@dataclass(frozen=True)
class TestEnv:
    """Where a test's services live: broker, topic prefix, database, clear tokens, and the
    run's settings (:class:`RunSettings`). Everything a test starts gets its configuration from
    here explicitly: in-process apps their settings objects (:meth:`platform`, :meth:`ingest`,
    :meth:`incident`, :meth:`projection`), child processes their environment (:meth:`env`)."""

    __test__ = False  # not a test class

    bootstrap: str
    topic_prefix: str
    dsn: str
    tokens: dict[str, str]  # principal id -> clear token
    run: RunSettings

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    def platform(self) -> Platform:
        """The settings of a process (or an app built in-process) pointed at this environment's
        broker, topics and database, with the session's city and tokens file: pass it down
        instead of changing ``os.environ``."""
        return Platform(
            kafka=KafkaSettings(bootstrap_servers=self.bootstrap, topic_prefix=self.topic_prefix),
            db=DatabaseSettings(dsn=SecretStr(self.dsn)),
            auth=self.run.auth(),
        )

    def projection(self, settings: ProjectionSettings | None = None) -> ProjectionConfig:
        """A projection app's (or command's) settings in this environment."""
        return ProjectionConfig(self.platform(), settings or ProjectionSettings())

    def ingest(self, platform: Platform | None = None) -> IngestConfig:
        """An intake or supply app's settings in this environment (or on ``platform``), with
        the run's pseudonym secret."""
        return IngestConfig(platform=platform or self.platform(), security=self.run.security())

    def incident(self, platform: Platform | None = None) -> IncidentConfig:
        """The incident app's settings in this environment (or on ``platform``), the notifier
        off."""
        platform = platform or self.platform()
        return IncidentConfig(platform, notify=self.run.notify(), ingest=self.ingest(platform))

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of a child process of this environment, for the process runner
        (``base=``): the developer's shell (``os.environ``, read, never changed) with the run's
        settings (:meth:`RunSettings.variables`), this environment's broker, topics and database
        (the harness's mapping of them, :meth:`harness.isolation.Isolation.variables`) and
        ``overrides``."""
        here = Isolation(self.bootstrap, self.topic_prefix, self.dsn).variables()
        return {**os.environ, **self.run.variables(), **here, **overrides}


@asynccontextmanager
async def isolated_env(
    base: TestEnv,
    *,
    label: str = "ptest",
    bootstrap: Target | None = None,
    drop_topics: bool = True,
    replication: int = 1,
) -> AsyncIterator[TestEnv]:
    """A fresh migrated database and topic prefix (on ``bootstrap``, default ``base``'s broker;
    a secured broker as its admin's KafkaSettings; topics with ``replication`` copies) with
    ``base``'s tokens and run settings (:func:`harness.isolation.isolated`)."""
    broker = bootstrap or base.bootstrap
    async with isolated(
        broker, base.dsn, label=label, replication=replication, drop_topics=drop_topics
    ) as iso:
        if requested_instants() is not None:  # a date run: this process may be in the future
            await accept_future_timestamps(broker, iso.topic_prefix)
        yield TestEnv(target_name(broker), iso.topic_prefix, iso.dsn, base.tokens, base.run)


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
