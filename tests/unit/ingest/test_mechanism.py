"""The shared ingest mechanism (authenticate -> validate -> pseudonymise -> idempotent publish ->
202), exercised through the three services on in-memory fakes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from shared.events.payloads import SharpsReturned, StreetNeedlesCollected, VisitStarted
from tests.unit.ingest.conftest import Harness, ago, bearer

CLEAR_CODE = "HT-0042"


def visit(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "facility_id": "halmtorv",
        "occurred_at": ago(5),
        "client_code": CLEAR_CODE,
        "substances": ["heroin"],
        "route": "inject",
    }
    body.update(over)
    return body


async def test_accepted_report_is_published_once_and_answered_202(intake: Harness) -> None:
    r = await intake.client.post("/v1/visits", json=visit(), headers=bearer("halmtorv"))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["type"] == "dk.dcr.visit.started"
    [env] = intake.publisher.published
    assert env.id == UUID(body["event_id"])
    assert env.source == "/facilities/halmtorv" and env.key == "halmtorv"
    assert isinstance(env.data, VisitStarted)
    assert env.data.visit_id == body["visit_id"]  # the issued id is echoed
    assert env.data.client_pseudonym == intake.deps.pseudonymiser.pseudonym("halmtorv", CLEAR_CODE)
    assert CLEAR_CODE not in env.model_dump_json()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dG9rLWhhbG10b3J2"},
    ],
)
async def test_missing_or_wrong_token_is_401(intake: Harness, headers: dict[str, str]) -> None:
    r = await intake.client.post("/v1/visits", json=visit(), headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert intake.publisher.published == []


async def test_token_of_another_facility_is_403(intake: Harness) -> None:
    r = await intake.client.post(
        "/v1/visits", json=visit(facility_id="halmtorv"), headers=bearer("nordvest")
    )
    assert r.status_code == 403
    assert intake.publisher.published == []


async def test_sanitation_token_may_not_report_for_a_facility(supply: Harness) -> None:
    r = await supply.client.post(
        "/v1/sharps/returned",
        json={"facility_id": "halmtorv", "occurred_at": ago(), "count": 3},
        headers=bearer("sanitation-city"),
    )
    assert r.status_code == 403
    assert supply.publisher.published == []


async def test_facility_token_may_not_report_street_collections(supply: Harness) -> None:
    body = {"district": "vesterbro", "area": "Skelbækgade", "occurred_at": ago(), "count": 3}
    r = await supply.client.post("/v1/street-needles", json=body, headers=bearer("halmtorv"))
    assert r.status_code == 403
    r = await supply.client.post("/v1/street-needles", json=body, headers=bearer("sanitation-city"))
    assert r.status_code == 202, r.text
    [env] = supply.publisher.published
    assert env.source == "/districts/vesterbro" and env.key == "vesterbro"
    assert env.facility_id is None
    assert isinstance(env.data, StreetNeedlesCollected) and env.data.district == "vesterbro"


async def test_invalid_field_is_422_naming_it_without_echoing_input(intake: Harness) -> None:
    r = await intake.client.post(
        "/v1/visits", json=visit(route="intravenous-ish"), headers=bearer("halmtorv")
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "route"]
    assert CLEAR_CODE not in r.text and "intravenous-ish" not in r.text
    r = await intake.client.post("/v1/visits", json=visit(surprise=1), headers=bearer("halmtorv"))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "surprise"]
    assert intake.publisher.published == []


@pytest.mark.parametrize("minutes_ago", [-10, 31 * 24 * 60])  # 10 min ahead; 31 days old
async def test_event_time_outside_the_window_is_422(intake: Harness, minutes_ago: int) -> None:
    r = await intake.client.post(
        "/v1/visits", json=visit(occurred_at=ago(minutes_ago)), headers=bearer("halmtorv")
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "occurred_at"]
    assert intake.publisher.published == []


async def test_naive_event_time_is_422(intake: Harness) -> None:
    r = await intake.client.post(
        "/v1/visits", json=visit(occurred_at="2026-11-28T11:00:00"), headers=bearer("halmtorv")
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "occurred_at"]


async def test_same_idempotency_key_gives_same_answer_and_one_event(intake: Harness) -> None:
    first = await intake.client.post(
        "/v1/visits", json=visit(), headers=bearer("halmtorv", key="k-1")
    )
    again = await intake.client.post(
        "/v1/visits", json=visit(), headers=bearer("halmtorv", key="k-1")
    )
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()  # same event id and same issued visit id
    assert first.headers["Idempotent-Replayed"] == "false"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(intake.publisher.published) == 1


async def test_client_chosen_event_id_is_an_idempotency_key(supply: Harness) -> None:
    event_id = "0b6f7e1c-3a52-4d4b-9a55-8c0d2b6a0e11"
    body = {"facility_id": "halmtorv", "occurred_at": ago(), "count": 3, "event_id": event_id}
    for _ in range(2):
        r = await supply.client.post("/v1/sharps/returned", json=body, headers=bearer("halmtorv"))
        assert r.status_code == 202 and r.json()["event_id"] == event_id
    [env] = supply.publisher.published
    assert str(env.id) == event_id and isinstance(env.data, SharpsReturned)


async def test_same_key_with_a_different_body_is_409(intake: Harness) -> None:
    r = await intake.client.post("/v1/visits", json=visit(), headers=bearer("halmtorv", "k-2"))
    assert r.status_code == 202
    r = await intake.client.post(
        "/v1/visits", json=visit(route="smoke"), headers=bearer("halmtorv", "k-2")
    )
    assert r.status_code == 409
    assert len(intake.publisher.published) == 1


async def test_keys_are_scoped_to_the_principal(intake: Harness) -> None:
    a = await intake.client.post("/v1/visits", json=visit(), headers=bearer("halmtorv", "k-3"))
    b = await intake.client.post(
        "/v1/visits", json=visit(facility_id="nordvest"), headers=bearer("nordvest", "k-3")
    )
    assert a.status_code == b.status_code == 202
    assert a.json()["event_id"] != b.json()["event_id"]
    assert len(intake.publisher.published) == 2


async def test_publisher_down_is_503_and_a_retry_publishes_exactly_once(intake: Harness) -> None:
    intake.publisher.fail = True
    r = await intake.client.post("/v1/visits", json=visit(), headers=bearer("halmtorv", "k-4"))
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) >= 1
    assert intake.publisher.published == []
    health = await intake.client.get("/healthz")
    assert health.status_code == 503 and health.json()["checks"]["kafka"] is False
    intake.publisher.fail = False
    retry = await intake.client.post("/v1/visits", json=visit(), headers=bearer("halmtorv", "k-4"))
    assert retry.status_code == 202
    [env] = intake.publisher.published
    # the event stored under the key on the first attempt is the one published: same id
    stored = intake.store.records[("halmtorv\x1fintake/visits", "k-4")]
    assert str(env.id) == retry.json()["event_id"] == stored.response["event_id"]
    again = await intake.client.post("/v1/visits", json=visit(), headers=bearer("halmtorv", "k-4"))
    assert again.json() == retry.json()
    assert len(intake.publisher.published) == 1


async def test_body_over_the_limit_is_413(intake: Harness) -> None:
    limit = intake.deps.settings.max_body_bytes
    body = visit(padding="x" * (limit + 1))
    r = await intake.client.post("/v1/visits", json=body, headers=bearer("halmtorv"))
    assert r.status_code == 413
    assert intake.publisher.published == []


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/v1/sharps/returned", {"count": -1}, ["body", "count"]),
        ("/v1/sharps/returned", {"count": 10**9}, ["body", "count"]),
        ("/v1/sharps/returned", {"weight_kg": 1e9}, ["body", "weight_kg"]),
        ("/v1/supplies/dispensed", {"items": {"syringes": 10**9}}, ["body", "items", "syringes"]),
        ("/v1/supplies/dispensed", {"items": {"syringes": 0}}, ["body", "items", "syringes"]),
        (
            "/v1/supplies/dispensed",
            {"items": {"unicorns": 1}},
            ["body", "items", "unicorns", "[key]"],
        ),
        ("/v1/stock/counts", {"items": {"foil": -5}}, ["body", "items", "foil"]),
    ],
)
async def test_absurd_quantities_are_422(
    supply: Harness, path: str, body: dict[str, Any], loc: list[str]
) -> None:
    full = {"facility_id": "halmtorv", "occurred_at": ago(), **body}
    r = await supply.client.post(path, json=full, headers=bearer("halmtorv"))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc
    assert supply.publisher.published == []


async def test_street_needles_of_a_billion_are_422(supply: Harness) -> None:
    body = {"district": "vesterbro", "area": "Halmtorvet", "occurred_at": ago(), "count": 10**9}
    r = await supply.client.post("/v1/street-needles", json=body, headers=bearer("sanitation-city"))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "count"]


async def test_unknown_facility_or_district_is_422(supply: Harness) -> None:
    body = {"district": "atlantis", "area": "Main street", "occurred_at": ago(), "count": 1}
    r = await supply.client.post("/v1/street-needles", json=body, headers=bearer("sanitation-city"))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "district"]
