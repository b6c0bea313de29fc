"""The internal read API (services/projection/api.py) over the in-memory read models: what a
reader gets (shapes, sums, ranges, roles) and that every answer matches its OpenAPI schema."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from services.projection import schema
from services.projection.api import ReadContext, build_router
from services.projection.figures import BREAKDOWNS, empty_day
from services.projection.read_port import LiveCounts, StockRow
from services.projection.runner import Freshness
from shared.auth import Principal, PrincipalKind, TokenRegistry, digest
from tests.openapi_check import conforms
from tests.unit.projection.factory import CITY
from tests.unit.projection.fake_reads import FakeReadModels, read_context

# Noon UTC: the same calendar day in Copenhagen whatever the season.
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
TODAY = date(2026, 11, 27)
FRESH = Freshness(NOW, 0, NOW - timedelta(seconds=2))
TOKENS = {"ops": PrincipalKind.OPS, "analyst": PrincipalKind.ANALYST}
ROOM = "halmtorv"


@dataclass
class Api:
    client: TestClient
    reads: FakeReadModels
    app: FastAPI

    def get(self, path: str, who: str = "ops", **params: Any) -> Any:
        return self.client.get(path, params=params, headers={"Authorization": f"Bearer {who}"})


@pytest.fixture
def api() -> Iterator[Api]:
    reads = FakeReadModels()
    ctx = read_context(reads, CITY, NOW, FRESH)
    principals = [Principal(id=k, kind=v, token_sha256=digest(k)) for k, v in TOKENS.items()]
    principals.append(Principal(id=ROOM, kind=PrincipalKind.FACILITY, token_sha256=digest(ROOM)))
    tokens = TokenRegistry(tuple(principals))

    def get_ctx(_: Request) -> ReadContext:
        return ctx

    def get_tokens(_: Request) -> TokenRegistry:
        return tokens

    app = FastAPI()
    app.include_router(build_router(get_ctx, get_tokens, "projection"), prefix="/v1")
    with TestClient(app) as client:
        yield Api(client, reads, app)


def _day(**figures: Any) -> dict[str, Any]:
    day = empty_day()
    day.update(figures)
    return day


def test_a_district_day_shows_every_column_and_breakdown(api: Api) -> None:
    api.reads.days[("vesterbro", TODAY)] = _day(
        visits=4, sharps_returned_kg=Decimal("1.25"), visit_minutes_median=Decimal("23.5")
    )
    r = api.get("/v1/districts/vesterbro/daily")
    assert r.status_code == 200
    body = r.json()
    assert body["from"] == body["to"] == TODAY.isoformat() and body["district"] == "vesterbro"
    [day] = body["days"]
    assert day["visits"] == 4 and day["sharps_returned_kg"] == 1.25
    assert day["visit_minutes_median"] == 23.5 and day["visit_minutes_mean"] is None
    shown = {c.name for c in schema.DISTRICT_DAILY if c.shown}
    assert set(day) == {"day", *shown, *BREAKDOWNS}
    assert "visit_seconds_total" not in day
    assert body["data_complete_until"] == NOW.isoformat()  # +00:00, as before the models
    assert body["lag_events"] == 0
    conforms(api.app, "/v1/districts/{district}/daily", body)


def test_days_without_data_are_zeros_and_the_city_sums_the_districts(api: Api) -> None:
    yesterday = TODAY - timedelta(days=1)
    api.reads.days[("vesterbro", TODAY)] = _day(visits=4, visits_completed=2)
    api.reads.days[("amager", TODAY)] = _day(visits=3, visits_completed=1)
    api.reads.days[("vesterbro", TODAY)]["visit_seconds_total"] = Decimal(600)
    api.reads.city[TODAY] = (6, Decimal("4.5"))
    body = api.get("/v1/city/summary", **{"from": yesterday.isoformat()}).json()
    empty, today = body["days"]
    assert empty["day"] == yesterday.isoformat() and empty["visits"] == 0
    assert today["visits"] == 7 and today["unique_clients"] == 6  # city-wide distinct
    assert today["visit_minutes_median"] == 4.5 and today["visit_minutes_mean"] == 3.33
    conforms(api.app, "/v1/city/summary", body)


def test_ranges_are_checked_and_analysts_read_closed_days_only(api: Api) -> None:
    bad = api.get("/v1/city/summary", **{"from": TODAY.isoformat(), "to": "2026-11-01"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "from"]
    assert api.get("/v1/city/summary", "analyst", to=TODAY.isoformat()).status_code == 403
    closed = api.get("/v1/city/summary", "analyst").json()
    assert closed["to"] == (TODAY - timedelta(days=1)).isoformat()
    assert api.get("/v1/districts/nowhere/daily").status_code == 404
    assert api.get("/v1/city/summary", "nobody").status_code == 401


def test_a_room_live_and_its_stock(api: Api) -> None:
    api.reads.live[ROOM] = LiveCounts(
        in_use=14, visits_today=30, refusals_today=2, last_event_time=NOW
    )
    live = api.get(f"/v1/facilities/{ROOM}/live", ROOM).json()
    assert live["booths_in_use"] == 14 and live["booths_free"] == 0  # never below zero
    assert live["visits_today"] == 30 and live["last_event_time"] == NOW.isoformat()
    conforms(api.app, "/v1/facilities/{facility}/live", live)
    assert api.get("/v1/facilities/nordvest/live", ROOM).status_code == 403
    api.reads.stock[ROOM] = [
        StockRow("naloxone", counted=10, counted_at=NOW - timedelta(days=1), moved=4, used_7d=14),
        StockRow("alcohol_swab", counted=0, counted_at=None, moved=-3, used_7d=0),
    ]
    stock = api.get(f"/v1/facilities/{ROOM}/stock").json()
    swab, naloxone = stock["items"]
    assert naloxone["on_hand"] == 14 and naloxone["average_daily_use_7d"] == 2.0
    assert naloxone["days_of_cover"] == 7.0
    assert swab["counted_at"] is None and swab["days_of_cover"] is None
    conforms(api.app, "/v1/facilities/{facility}/stock", stock)


def test_alerts_newest_first_and_a_room_reads_its_own_district(api: Api) -> None:
    def alert(i: int, district: str) -> dict[str, Any]:
        return {
            "alert_id": f"a{i}",
            "district": district,
            "raised_at": NOW - timedelta(hours=i),
            "reason": "adulterant",
            "substance": "fentanyl",
            "facility_id": ROOM,
            "overdoses_in_window": None,
            "window_start": None,
            "window_end": None,
            "state": "open",
            "late": False,
            "acknowledged_at": None,
            "seconds_to_acknowledge": None,
            "resolved_at": None,
        }

    api.reads.alert_rows += [alert(2, "vesterbro"), alert(1, "vesterbro"), alert(0, "amager")]
    body = api.get("/v1/alerts", limit=2).json()
    assert [a["alert_id"] for a in body["alerts"]] == ["a0", "a1"]
    assert body["alerts"][0]["raised_at"] == NOW.isoformat()
    conforms(api.app, "/v1/alerts", body)
    own = api.get("/v1/alerts", ROOM, district="vesterbro").json()
    assert [a["alert_id"] for a in own["alerts"]] == ["a1", "a2"]
    assert api.get("/v1/alerts", ROOM, district="amager").status_code == 403


def test_the_directory_and_every_route_documents_its_answer(api: Api) -> None:
    body = api.get("/v1/districts", ROOM).json()
    assert [d["id"] for d in body["districts"]] == [d.id for d in CITY.districts]
    vesterbro = body["districts"][0]
    assert {f["id"] for f in vesterbro["facilities"]} == {"halmtorv", "maendenes-hjem"}
    conforms(api.app, "/v1/districts", body)
    doc = api.app.openapi()
    for path, ops in doc["paths"].items():
        answer = ops["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in answer, f"{path} answers an untyped object"
    for name, component in doc["components"]["schemas"].items():
        for field_name, prop in component.get("properties", {}).items():
            if name not in ("HTTPValidationError", "ValidationError"):
                assert prop.get("description"), f"{name}.{field_name} has no description"
