"""Issue 13, plausibility at the door: a bool is not a count, a visit cannot end before it
started (422 naming the field), and the start encoded in intake's visit ids is the one checked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.intake.routes import timed_visit_id, visit_start
from tests.unit.ingest.conftest import NOW, Harness, ago, bearer


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/sharps/returned", {"count": True}, ["body", "count"]),
        ("/v1/sharps/returned", {"count": "3"}, ["body", "count"]),
        ("/v1/sharps/returned", {"weight_kg": True}, ["body", "weight_kg"]),
        ("/v1/stock/counts", {"items": {"needles": True}}, ["body", "items", "needles"]),
        ("/v1/stock/deliveries", {"items": {"needles": False}}, ["body", "items", "needles"]),
    ],
)
async def test_a_bool_is_not_a_count(
    supply: Harness, path: str, body: dict[str, Any], field: list[str]
) -> None:
    r = await supply.client.post(
        path,
        json={"facility_id": "halmtorv", "occurred_at": ago(5), **body},
        headers=bearer("halmtorv"),
    )
    assert r.status_code == 422, r.text
    assert [e["loc"][: len(field)] for e in r.json()["detail"]] == [field]
    assert supply.publisher.published == []


async def test_a_bool_is_not_a_booth_number(intake: Harness) -> None:
    body = {
        "facility_id": "halmtorv",
        "occurred_at": ago(5),
        "client_code": "HT-1",
        "substances": ["heroin"],
        "route": "inject",
        "booth": True,
    }
    r = await intake.client.post("/v1/visits", json=body, headers=bearer("halmtorv"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "booth"]


async def start_visit(intake: Harness, minutes_ago: float) -> str:
    body = {
        "facility_id": "halmtorv",
        "occurred_at": ago(minutes_ago),
        "client_code": "HT-1",
        "substances": ["heroin"],
        "route": "inject",
    }
    r = await intake.client.post("/v1/visits", json=body, headers=bearer("halmtorv"))
    assert r.status_code == 202
    visit_id: str = r.json()["visit_id"]
    return visit_id


async def test_an_end_before_the_start_is_422_naming_occurred_at(intake: Harness) -> None:
    visit_id = await start_visit(intake, minutes_ago=30)
    end = {"facility_id": "halmtorv", "visit_id": visit_id, "occurred_at": ago(45)}
    r = await intake.client.post("/v1/visits/end", json=end, headers=bearer("halmtorv"))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "occurred_at"]
    assert "before the start" in r.json()["detail"][0]["msg"]
    assert [e.type for e in intake.publisher.published] == ["dk.dcr.visit.started"]


@pytest.mark.parametrize("end_minutes_ago", [30, 10, 0])
async def test_an_end_at_or_after_the_start_is_accepted(
    intake: Harness, end_minutes_ago: float
) -> None:
    visit_id = await start_visit(intake, minutes_ago=30)
    end = {"facility_id": "halmtorv", "visit_id": visit_id, "occurred_at": ago(end_minutes_ago)}
    r = await intake.client.post("/v1/visits/end", json=end, headers=bearer("halmtorv"))
    assert r.status_code == 202, r.text


async def test_visit_ids_of_the_older_form_are_not_checked(intake: Harness) -> None:
    end = {"facility_id": "halmtorv", "visit_id": "3f9a1c0e5b7d4e2a8c6b1d0f9e8a7c6b"}
    r = await intake.client.post(
        "/v1/visits/end", json={**end, "occurred_at": ago(60)}, headers=bearer("halmtorv")
    )
    assert r.status_code == 202


def test_the_visit_id_carries_the_start_to_the_second() -> None:
    start = NOW - timedelta(hours=3, microseconds=250_000)
    visit_id = timed_visit_id(start)
    assert len(visit_id) == 33 and visit_id != timed_visit_id(start)  # random part
    assert visit_start(visit_id) == start.replace(microsecond=0)
    assert visit_start("3f9a1c0e5b7d4e2a8c6b1d0f9e8a7c6b") is None
