"""The period, per-room and report routes (services/projection/period_api.py, report_api.py)
over the in-memory read models: what a reader gets through the read-model port, no database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from services.projection.api import ReadContext
from services.projection.period_api import build_period_router
from services.projection.period_queries import StreetAreaDay
from services.projection.report_api import build_report_router
from services.projection.runner import Freshness
from services.projection.settings import ProjectionSettings
from shared.auth import Principal, PrincipalKind, digest
from tests.openapi_check import conforms
from tests.unit.projection.factory import CITY
from tests.unit.projection.fake_reads import FakeReadModels, read_context

# Noon UTC: the same calendar day in Copenhagen whatever the season.
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
FRESH = Freshness(NOW, 0, NOW)
DAY = date(2026, 11, 20)  # in the month of NOW (an open month)
LAST_MONTH = date(2026, 10, 14)


@dataclass
class Api:
    client: TestClient
    reads: FakeReadModels
    app: FastAPI

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params)


OPS = Principal(id="ops", kind=PrincipalKind.OPS, token_sha256=digest("ops"))


@pytest.fixture
def api() -> Iterator[Api]:
    reads = FakeReadModels()
    ctx = read_context(reads, CITY, NOW, FRESH)

    def get_ctx(_: Request) -> ReadContext:
        return ctx

    def ops_reader() -> Principal:
        """The routes' roles are tested on the real app (test_read_auth); here: ops."""
        return OPS

    app = FastAPI()
    app.include_router(build_period_router(get_ctx, ops_reader, "projection"), prefix="/v1")
    app.include_router(build_report_router(get_ctx, ops_reader, "projection"), prefix="/v1")
    with TestClient(app) as client:
        yield Api(client, reads, app)


def _put(api: Api, facility: str, day: date, **cells: int) -> None:
    api.reads.room_amounts[(facility, day)] = {
        k.replace("__", "."): Decimal(v) for k, v in cells.items()
    }


def test_a_district_period_sums_its_rooms_and_fills_every_cell(api: Api) -> None:
    _put(api, "halmtorv", DAY, visits=10, people=7, referrals__housing=2)
    _put(api, "maendenes-hjem", DAY, visits=5, people=4, referrals__medical_care=1)
    _put(api, "nordvest", DAY, visits=100, people=90)  # another district
    _put(api, "halmtorv", date(2026, 10, 31), visits=1000)  # the month before
    resp = api.get("/v1/periods", scope="district:vesterbro", period="month", anchor=str(DAY))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["from"], body["to"], body["days"]) == ("2026-11-01", "2026-11-30", 30)
    figures = body["figures"]
    assert (figures["visits"], figures["people"]) == (15, 11)
    assert (figures["referrals"], figures["referrals.housing"]) == (3, 2)
    assert figures["deaths"] == 0  # every cell present
    conforms(api.app, "/v1/periods", body)


def test_a_bad_period_names_the_field(api: Api) -> None:
    resp = api.get("/v1/periods", scope="room:nowhere")
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["query", "scope"]
    assert api.get("/v1/periods", period="fortnight").json()["detail"][0]["loc"][1] == "period"


def test_a_room_per_day_has_every_day_of_the_range(api: Api) -> None:
    _put(api, "halmtorv", DAY, visits=3, deaths=1)
    resp = api.get("/v1/rooms/halmtorv/daily", **{"from": "2026-11-19", "to": "2026-11-21"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["district"] == "vesterbro"
    assert [d["day"] for d in body["days"]] == ["2026-11-19", "2026-11-20", "2026-11-21"]
    assert [(d["visits"], d["deaths"]) for d in body["days"]] == [(0, 0), (3, 1), (0, 0)]
    conforms(api.app, "/v1/rooms/{facility}/daily", body)
    assert api.get("/v1/rooms/nowhere/daily").status_code == 404


def test_street_collections_of_a_district_by_day(api: Api) -> None:
    api.reads.street = [
        StreetAreaDay(DAY, "nordvest", "utterslev", 2, 40, Decimal("0.35")),
        StreetAreaDay(date(2026, 11, 19), "nordvest", "bispebjerg", 1, 5, Decimal("0.05")),
        StreetAreaDay(DAY, "vesterbro", "skelbaek", 1, 9, Decimal("0.1")),
    ]
    resp = api.get(
        "/v1/street-collections", district="nordvest", **{"from": "2026-11-19", "to": "2026-11-20"}
    )
    assert resp.status_code == 200, resp.text
    rows = resp.json()["collections"]
    assert [(r["day"], r["area"], r["needles"], r["kg"]) for r in rows] == [
        ("2026-11-19", "bispebjerg", 5, 0.05),
        ("2026-11-20", "utterslev", 40, 0.35),
    ]
    conforms(api.app, "/v1/street-collections", resp.json())
    assert api.get("/v1/street-collections", district="atlantis").status_code == 404


def _report(api: Api, variant: str) -> str:
    resp = api.get(
        "/v1/reports",
        scope="room:halmtorv",
        period="month",
        anchor=str(LAST_MONTH),
        variant=variant,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    return str(resp.text)


def test_a_public_report_suppresses_small_counts_the_internal_one_shows(api: Api) -> None:
    threshold = ProjectionSettings().suppression_threshold
    assert threshold > 2
    for facility in ("halmtorv", "maendenes-hjem"):
        _put(api, facility, LAST_MONTH, visits=500, people=200, deaths=1, incident_outcomes__died=1)
    internal, public = _report(api, "internal"), _report(api, "public")
    assert 'class="banner public"' in public and "NOT FOR PUBLICATION" in internal
    assert "suppressed" in public and "suppressed" not in internal
    assert "October 2026" in public


def test_a_public_report_of_an_open_period_is_refused(api: Api) -> None:
    resp = api.get("/v1/reports", scope="city", period="month", anchor=str(DAY), variant="public")
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["query", "period"]
