"""Against the real broker and database: refused requests publish nothing, a key publishes once
(also across a restart), and Kafka being unreachable means 503 (and no crash), after which a retry
with the same key publishes the event stored under it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import httpx
import pytest

from services.incident.app import create_app as create_incident
from services.intake.app import create_app as create_intake
from services.supply.app import create_app as create_supply
from shared.kafka import topics
from shared.settings import KafkaSettings
from tests.integration.ingest.conftest import at, bearer, records_with_id, topic_sizes
from tests.support import serve

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration


def sharps(facility: str = "halmtorv", **over: object) -> dict[str, object]:
    return {"facility_id": facility, "occurred_at": at(3), "count": 5, **over}


async def test_refused_requests_publish_nothing(
    test_env: TestEnv,
    supply: httpx.AsyncClient,
) -> None:
    before = await topic_sizes(test_env, topics.ALL_TOPICS)
    refused = [
        (sharps(), {}, 401),
        (sharps(), {"Authorization": "Bearer wrong"}, 401),
        (sharps(), bearer(test_env, "nordvest"), 403),
        (sharps(), bearer(test_env, "sanitation-city"), 403),
        (sharps(count=-1), bearer(test_env, "halmtorv"), 422),
        (sharps(count=10**9), bearer(test_env, "halmtorv"), 422),
        (sharps(occurred_at=at(-60)), bearer(test_env, "halmtorv"), 422),
    ]
    for body, headers, status in refused:
        r = await supply.post("/v1/sharps/returned", json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
    street = {"district": "vesterbro", "area": "Halmtorvet", "occurred_at": at(), "count": 1}
    r = await supply.post("/v1/street-needles", json=street, headers=bearer(test_env, "halmtorv"))
    assert r.status_code == 403
    # publishing is synchronous (202 only after the broker's ack): nothing can still be in flight
    assert await topic_sizes(test_env, topics.ALL_TOPICS) == before
    ok = await supply.post(
        "/v1/sharps/returned", json=sharps(), headers=bearer(test_env, "halmtorv")
    )
    assert ok.status_code == 202  # the check above can see a publish
    after = await topic_sizes(test_env, topics.ALL_TOPICS)
    assert after[topics.SUPPLIES] == before[topics.SUPPLIES] + 1


async def test_duplicate_key_gives_one_record(
    test_env: TestEnv,
    supply: httpx.AsyncClient,
) -> None:
    body = sharps()
    answers = [
        await supply.post(
            "/v1/sharps/returned", json=body, headers=bearer(test_env, "halmtorv", "dup-1")
        )
        for _ in range(3)
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["event_id"] for a in answers}) == 1
    records = await records_with_id(test_env, topics.SUPPLIES, answers[0].json()["event_id"])
    assert len(records) == 1


async def test_idempotency_survives_a_restart(test_env: TestEnv) -> None:
    body = sharps(count=11)
    async with serve(create_supply(config=test_env.ingest())) as first:
        a = await first.post(
            "/v1/sharps/returned", json=body, headers=bearer(test_env, "halmtorv", "restart-1")
        )
    before = await topic_sizes(test_env, (topics.SUPPLIES,))
    # a new process would see the same database
    async with serve(create_supply(config=test_env.ingest())) as second:
        b = await second.post(
            "/v1/sharps/returned", json=body, headers=bearer(test_env, "halmtorv", "restart-1")
        )
        c = await second.post(
            "/v1/sharps/returned",
            json=sharps(count=12),
            headers=bearer(test_env, "halmtorv", "restart-1"),
        )
    assert a.status_code == b.status_code == 202
    assert b.json() == a.json() and b.headers["Idempotent-Replayed"] == "true"
    assert c.status_code == 409
    assert await topic_sizes(test_env, (topics.SUPPLIES,)) == before
    assert len(await records_with_id(test_env, topics.SUPPLIES, a.json()["event_id"])) == 1


async def test_kafka_unreachable_is_503_then_a_retry_publishes_once(
    test_env: TestEnv,
) -> None:
    visit = {
        "facility_id": "halmtorv",
        "occurred_at": at(1),
        "client_code": "HT-503",
        "substances": ["cocaine"],
        "route": "smoke",
    }
    nothing_listens = KafkaSettings(
        bootstrap_servers="127.0.0.1:1", topic_prefix=test_env.topic_prefix
    )
    down_config = test_env.ingest(replace(test_env.platform(), kafka=nothing_listens))
    async with serve(create_intake(config=down_config)) as down:  # the service starts anyway
        r = await down.post(
            "/v1/visits", json=visit, headers=bearer(test_env, "halmtorv", "down-1")
        )
        assert r.status_code == 503
        assert int(r.headers["Retry-After"]) >= 1
        health = await down.get("/healthz")
        assert health.status_code == 503
        assert health.json()["checks"] == {"kafka": False, "database": True}
    before = await topic_sizes(test_env, (topics.VISITS,))
    async with serve(create_intake(config=test_env.ingest())) as up:
        retry = await up.post(
            "/v1/visits", json=visit, headers=bearer(test_env, "halmtorv", "down-1")
        )
        again = await up.post(
            "/v1/visits", json=visit, headers=bearer(test_env, "halmtorv", "down-1")
        )
        assert (await up.get("/healthz")).status_code == 200
    assert retry.status_code == again.status_code == 202
    assert again.json() == retry.json()
    assert await topic_sizes(test_env, (topics.VISITS,)) == {
        topics.VISITS: before[topics.VISITS] + 1
    }
    assert len(await records_with_id(test_env, topics.VISITS, retry.json()["event_id"])) == 1


async def test_incident_service_starts_and_stops_without_kafka(
    test_env: TestEnv,
) -> None:
    """The alert worker retries in the background; the API answers 503, /healthz says why."""
    no_kafka = replace(
        test_env.platform(),
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix=test_env.topic_prefix),
    )
    seizure = {
        "facility_id": "amager",
        "occurred_at": at(1),
        "kind": "seizure",
        "severity": "low",
        "life_threatening": False,
        "outcome": "recovered_on_site",
    }
    async with serve(create_incident(config=test_env.incident(no_kafka))) as down:
        r = await down.post("/v1/incidents", json=seizure, headers=bearer(test_env, "amager"))
        assert r.status_code == 503 and "Retry-After" in r.headers
        health = await down.get("/healthz")
        assert health.status_code == 503 and health.json()["checks"]["kafka"] is False
