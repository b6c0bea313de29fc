"""Issue 13, "no 202 without effect": one client-chosen event id never carries two different
reports (whatever the Idempotency-Key), keys mean nothing on another route, and a replay gets the
original answer. On in-memory fakes; tests/integration/ingest/test_idempotency_integrity.py runs
the same cases against PostgreSQL and Kafka."""

from __future__ import annotations

import uuid
from typing import Any

from tests.unit.ingest.conftest import Harness, ago, bearer


def referral(event_id: str, **over: Any) -> dict[str, Any]:
    return {
        "facility_id": "halmtorv",
        "occurred_at": ago(5),
        "referral_to": "housing",
        "event_id": event_id,
        **over,
    }


async def test_event_id_reused_with_another_body_is_409_whatever_the_key(intake: Harness) -> None:
    event_id = str(uuid.uuid4())
    first = await intake.client.post(
        "/v1/referrals", json=referral(event_id), headers=bearer("halmtorv", "key-a")
    )
    assert first.status_code == 202
    other = referral(event_id, referral_to="medical_care")
    for key in ("key-b", "key-c", None):
        r = await intake.client.post("/v1/referrals", json=other, headers=bearer("halmtorv", key))
        assert r.status_code == 409, (key, r.text)
    assert len(intake.publisher.published) == 1


async def test_event_id_reused_on_another_route_is_409(intake: Harness) -> None:
    event_id = str(uuid.uuid4())
    r = await intake.client.post(
        "/v1/referrals", json=referral(event_id), headers=bearer("halmtorv")
    )
    assert r.status_code == 202
    service = {"facility_id": "halmtorv", "occurred_at": ago(5), "service": "wound_care"}
    r = await intake.client.post(
        "/v1/services", json={**service, "event_id": event_id}, headers=bearer("halmtorv", "k")
    )
    assert r.status_code == 409
    assert len(intake.publisher.published) == 1


async def test_same_event_id_and_body_under_a_new_key_is_a_replay(intake: Harness) -> None:
    event_id = str(uuid.uuid4())
    first = await intake.client.post(
        "/v1/referrals", json=referral(event_id), headers=bearer("halmtorv", "key-a")
    )
    again = await intake.client.post(
        "/v1/referrals", json=referral(event_id), headers=bearer("halmtorv", "key-b")
    )
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(intake.publisher.published) == 1


async def test_a_key_is_scoped_to_its_route(supply: Harness) -> None:
    items = {"facility_id": "halmtorv", "occurred_at": ago(5), "items": {"syringes": 100}}
    delivered = await supply.client.post(
        "/v1/stock/deliveries", json=items, headers=bearer("halmtorv", "same-key")
    )
    counted = await supply.client.post(
        "/v1/stock/counts", json=items, headers=bearer("halmtorv", "same-key")
    )
    assert delivered.status_code == counted.status_code == 202
    assert delivered.json()["type"] == "dk.dcr.stock.delivered"
    assert counted.json()["type"] == "dk.dcr.stock.counted"
    assert counted.headers["Idempotent-Replayed"] == "false"
    assert [e.type for e in supply.publisher.published] == [
        "dk.dcr.stock.delivered",
        "dk.dcr.stock.counted",
    ]


async def test_a_replay_returns_the_original_answer(intake: Harness) -> None:
    body = {
        "facility_id": "halmtorv",
        "occurred_at": ago(5),
        "client_code": "HT-1",
        "substances": ["heroin"],
        "route": "inject",
    }
    first = await intake.client.post("/v1/visits", json=body, headers=bearer("halmtorv", "k-v"))
    again = await intake.client.post("/v1/visits", json=body, headers=bearer("halmtorv", "k-v"))
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert "visit_id" in again.json()  # the id the service issued the first time
