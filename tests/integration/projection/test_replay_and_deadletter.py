"""Duplicates change nothing; unusable records go to the dead-letter topic and the projection
keeps going past them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from services.projection.app import create_app as projection_app
from services.projection.store import READ_MODEL_TABLES
from shared.events import payloads as p
from shared.events.envelope import Envelope, to_headers, to_value
from shared.events.vocabulary import RefusalReason
from shared.kafka.topics import DEADLETTER, VISITS
from tests.integration.projection.harness import (
    assert_api_matches_oracle,
    produce,
    produce_raw,
    public_api,
    snapshot,
    wait_caught_up,
)
from tests.support import ops_auth, read_topic, serve
from tests.unit.projection.factory import CITY, random_stream, refused
from tests.unit.projection.oracle import Oracle

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration


async def test_replaying_the_same_events_changes_nothing(iso_env: TestEnv) -> None:
    events = random_stream(seed=3, n=1200, base=datetime.now(UTC))
    await produce(iso_env.bootstrap, iso_env.topic_prefix, events)
    async with serve(projection_app(iso_env.projection()), headers=ops_auth(iso_env)) as client:
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        before = await snapshot(iso_env.dsn)
        assert before["district_daily"] and before["visits"]
        # every event again (same ids), in reverse order: an ingest retry storm
        await produce(iso_env.bootstrap, iso_env.topic_prefix, list(reversed(events)))
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        after = await snapshot(iso_env.dsn)
        for table in READ_MODEL_TABLES:
            assert after[table] == before[table], table
        oracle = Oracle(CITY).feed(events)
        days = [k[1] for k in oracle.district_days()]
        async with public_api(iso_env, oracle, min(days), max(days)) as public:
            await assert_api_matches_oracle(client, oracle, min(days), max(days), public=public)


def _headers(env: Envelope) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in to_headers(env).items()]


async def test_unusable_records_are_dead_lettered_and_skipped(iso_env: TestEnv) -> None:
    now = datetime.now(UTC)
    good = [refused(now - timedelta(minutes=i), RefusalReason.CAPACITY) for i in range(5)]
    topic = iso_env.topic(VISITS)
    stranger = Envelope.wrap(
        p.VisitRefused(reason=RefusalReason.OTHER),
        id=uuid.uuid4(),
        source="/facilities/atlantis",
        time=now,
    )
    template = good[0]
    bad_type = [(k, b"dk.dcr.nonsense" if k == "ce_type" else v) for k, v in _headers(template)]
    poison = [
        ("value is not valid JSON", b"halmtorv", b"{nope", _headers(template)),
        ("missing CloudEvents header", b"halmtorv", to_value(template), []),
        ("unknown ce_type", b"halmtorv", to_value(template), bad_type),
        ("unknown facility in source", b"atlantis", to_value(stranger), _headers(stranger)),
    ]
    await produce(iso_env.bootstrap, iso_env.topic_prefix, good[:2])
    sent = []
    for reason, key, value, headers in poison:
        sent.append(
            (
                reason,
                value,
                headers,
                *await produce_raw(iso_env.bootstrap, topic, key, value, headers),
            )
        )
    await produce(iso_env.bootstrap, iso_env.topic_prefix, good[2:])

    async with serve(projection_app(iso_env.projection()), headers=ops_auth(iso_env)) as client:
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        oracle = Oracle(CITY).feed(good)
        days = [k[1] for k in oracle.district_days()]
        await assert_api_matches_oracle(client, oracle, min(days), max(days))

    letters = await read_topic(iso_env.bootstrap, iso_env.topic(DEADLETTER))
    assert len(letters) == len(poison)
    by_offset = {
        (int(r.headers["dlq_original_partition"]), int(r.headers["dlq_original_offset"])): r
        for r in letters
    }
    for reason, value, headers, partition, offset in sent:
        letter = by_offset[(partition, offset)]
        assert reason in letter.headers["dlq_reason"].decode()
        assert letter.headers["dlq_original_topic"].decode() == topic
        assert letter.headers["dlq_service"] == b"projection"
        assert letter.value == value
        for k, v in headers:
            assert letter.headers[k] == v
