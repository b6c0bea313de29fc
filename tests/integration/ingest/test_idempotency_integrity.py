"""Issue 13, "no 202 without effect", against the real PostgreSQL and Kafka: the reviewer's case
(one body ``event_id`` under three Idempotency-Keys, two referrals and a seizure incident) gives
one 202 and two 409s and one record in Kafka; one key on two routes publishes both reports; a
replay returns the original answer."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import httpx
import pytest

from shared.kafka import topics
from tests.integration.ingest.conftest import at, bearer, records_with_id, topic_sizes

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration


async def test_one_event_id_never_carries_two_reports(
    test_env: TestEnv, intake: httpx.AsyncClient, incident: httpx.AsyncClient
) -> None:
    event_id = str(uuid.uuid4())
    referral = {"facility_id": "amager", "occurred_at": at(5), "event_id": event_id}
    before = await topic_sizes(test_env, (topics.VISITS, topics.INCIDENTS))
    first = await intake.post(
        "/v1/referrals",
        json={**referral, "referral_to": "housing"},
        headers=bearer(test_env, "amager", "ref-1"),
    )
    second = await intake.post(
        "/v1/referrals",
        json={**referral, "referral_to": "medical_care"},
        headers=bearer(test_env, "amager", "ref-2"),
    )
    seizure = await incident.post(
        "/v1/incidents",
        json={
            **referral,
            "kind": "seizure",
            "severity": "moderate",
            "life_threatening": False,
            "outcome": "recovered_on_site",
        },
        headers=bearer(test_env, "amager", "inc-3"),
    )
    assert first.status_code == 202
    assert second.status_code == 409 and seizure.status_code == 409, (second.text, seizure.text)
    after = await topic_sizes(test_env, (topics.VISITS, topics.INCIDENTS))
    assert after == {
        topics.VISITS: before[topics.VISITS] + 1,
        topics.INCIDENTS: before[topics.INCIDENTS],
    }
    assert len(await records_with_id(test_env, topics.VISITS, event_id)) == 1
    # the same body again, under yet another key: the original answer, nothing new published
    replay = await intake.post(
        "/v1/referrals",
        json={**referral, "referral_to": "housing"},
        headers=bearer(test_env, "amager", "ref-4"),
    )
    assert (replay.status_code, replay.json()) == (202, first.json())
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len(await records_with_id(test_env, topics.VISITS, event_id)) == 1


async def test_one_key_on_two_routes_publishes_both(
    test_env: TestEnv, supply: httpx.AsyncClient
) -> None:
    items = {"facility_id": "halmtorv", "occurred_at": at(5), "items": {"syringes": 40}}
    delivered = await supply.post(
        "/v1/stock/deliveries", json=items, headers=bearer(test_env, "halmtorv", "route-key")
    )
    counted = await supply.post(
        "/v1/stock/counts", json=items, headers=bearer(test_env, "halmtorv", "route-key")
    )
    assert delivered.status_code == counted.status_code == 202
    assert counted.json()["type"] == "dk.dcr.stock.counted"
    assert counted.headers["Idempotent-Replayed"] == "false"
    for answer in (delivered, counted):
        records = await records_with_id(test_env, topics.SUPPLIES, answer.json()["event_id"])
        assert [r.headers["ce_type"].decode() for r in records] == [answer.json()["type"]]
