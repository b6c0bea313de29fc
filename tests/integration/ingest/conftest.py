"""Helpers for the ingest integration tests: the three apps on the real Kafka and PostgreSQL
(``test_env``), CloudEvents checks on the records they produced, and the alert worker's progress.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.incident.app import create_app as create_incident
from services.incident.settings import AlertSettings
from services.intake.app import create_app as create_intake
from services.supply.app import create_app as create_supply
from shared.events.envelope import Envelope, decode
from shared.kafka.topics import INCIDENTS
from tests.integration.conftest import TestEnv
from tests.support import Record, read_topic, serve


def at(minutes_ago: float = 1.0) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


def bearer(env: TestEnv, principal: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {env.tokens[principal]}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


@pytest.fixture
async def intake(test_env: TestEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_intake(config=test_env.ingest())) as client:
        yield client


@pytest.fixture
async def supply(test_env: TestEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_supply(config=test_env.ingest())) as client:
        yield client


@pytest.fixture
async def incident(test_env: TestEnv) -> AsyncIterator[httpx.AsyncClient]:
    """The incident app, with its drug alert worker running."""
    async with serve(create_incident(config=test_env.incident())) as client:
        yield client


async def records_with_id(env: TestEnv, topic: str, event_id: str) -> list[Record]:
    return [
        r
        for r in await read_topic(env.bootstrap, env.topic(topic))
        if r.headers.get("ce_id") == event_id.encode()
    ]


def check_cloudevent(
    record: Record, *, event_id: str, event_type: str, source: str, key: str
) -> Envelope:
    """Assert the binary-mode CloudEvents headers and key; return the decoded envelope."""
    h = {k: v.decode() for k, v in record.headers.items()}
    assert h["ce_specversion"] == "1.0"
    assert h["ce_id"] == event_id
    assert h["ce_type"] == event_type
    assert h["ce_source"] == source
    assert datetime.fromisoformat(h["ce_time"]).tzinfo is not None
    assert h["content-type"] == "application/json"
    assert record.key == key.encode()
    env = decode(record.headers, record.value)
    assert str(env.id) == event_id and env.type == event_type and env.source == source
    return env


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    await consumer._client.force_metadata_update()  # as tests.support.read_topic does
    return [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]


async def topic_sizes(env: TestEnv, topics: tuple[str, ...]) -> dict[str, int]:
    """Records per (prefixed) topic: the sum of the partitions' end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=env.bootstrap)
    await consumer.start()
    try:
        sizes = {}
        for topic in topics:
            parts = await _partitions(consumer, env.topic(topic))
            sizes[topic] = sum((await consumer.end_offsets(parts)).values())
        return sizes
    finally:
        await consumer.stop()


async def alert_worker_caught_up(env: TestEnv, topic_name: str = INCIDENTS) -> bool:
    """Whether the alert worker committed every record of the incidents topic (or of
    ``topic_name``, e.g. the corrections) so it has processed them all and published whatever
    they raised."""
    topic = env.topic(topic_name)
    consumer = AIOKafkaConsumer(bootstrap_servers=env.bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    await consumer.start()
    await admin.start()
    try:
        parts = await _partitions(consumer, topic)
        assert parts, f"no partitions for {topic}"
        end = await consumer.end_offsets(parts)
        committed: dict[Any, Any] = await admin.list_consumer_group_offsets(
            env.topic_prefix + AlertSettings().consumer_group
        )
        return all(
            end[tp] == 0 or (tp in committed and committed[tp].offset >= end[tp]) for tp in parts
        )
    finally:
        await admin.close()
        await consumer.stop()
