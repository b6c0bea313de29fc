"""Who may read what on the internal read API and every /metrics, on the real PostgreSQL and
Kafka: every route is found in the app's own OpenAPI schema (no hand list), asked without a
token, with a wrong token and with each role; refusals are 401/403 exactly as on ingest and are
counted in ``dcr_auth_failures_total{service, reason}``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI

from services.incident.app import create_app as incident_app
from services.intake.app import create_app as intake_app
from services.projection.app import create_app as projection_app
from services.projection.public_app import create_app as public_app
from services.supply.app import create_app as supply_app
from shared.auth import digest
from tests.support import auth, auth_failures, scrape_auth, serve

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration

OWN, OTHER = "halmtorv", "nordvest"  # two facilities' tokens


def _routes(app: FastAPI) -> list[str]:
    """Every GET path of the app's schema except the open liveness probe, made concrete."""
    paths = [p for p, ops in app.openapi()["paths"].items() if "get" in ops and p != "/healthz"]
    return [p.replace("{district}", "vesterbro").replace("{facility}", OWN) for p in paths]


def _allowed(role: str, path: str) -> bool:
    """What the roles are for (services/projection/access.py), stated from the user's side."""
    if role == "ops":
        return True
    if path == "/v1/districts":
        return role in ("analyst", OWN)
    if path.startswith("/v1/facilities/"):
        return role == OWN
    if path == "/v1/alerts":
        return False  # a facility reads its own district's alerts only (checked below)
    if path == f"/v1/rooms/{OWN}/daily":
        return role == OWN  # a room's own figures: not the analyst's (city and districts)
    return role == "analyst"  # district and city figures (reports and periods: city by default)


def ctx_today_at_least(utc_today: date) -> date:
    """The service's local today is the UTC day or the next one (Copenhagen is ahead of UTC):
    a period that ended before the UTC day ended before the local today."""
    return utc_today + timedelta(days=1)


#: Without parameters ops asks for the public report of the month holding today: a 422 naming
#: the period (public reports cover closed periods); an analyst's default is the last closed one.
NEEDS_PARAMS = {("/v1/reports", "ops")}


async def test_every_internal_route_refuses_missing_wrong_and_other_role_tokens(
    iso_env: TestEnv,
) -> None:
    tokens = iso_env.tokens
    app = projection_app(iso_env.projection())
    routes = _routes(app)
    assert {"/v1/districts", "/v1/city/summary", f"/v1/facilities/{OWN}/live", "/v1/alerts"} <= (
        set(routes)
    )
    refused: Counter[tuple[str, str]] = Counter()
    async with serve(app) as client:
        before = auth_failures((await client.get("/metrics", headers=scrape_auth(iso_env))).text)
        for path in routes:
            for headers, reason in (
                ({}, "missing"),
                ({"Authorization": "Basic b3BzOng="}, "missing"),
                (auth("not-a-token"), "invalid"),
                (auth(digest(tokens["ops"])), "invalid"),
            ):
                r = await client.get(path, headers=headers)
                assert r.status_code == 401, (path, headers, r.text)
                assert r.headers["WWW-Authenticate"] == "Bearer"
                refused[("projection", reason)] += 1
            for role in ("ops", "analyst", OWN, "sanitation-city", "prometheus"):
                r = await client.get(path, headers=auth(tokens[role]))
                if _allowed(role, path):
                    want = 422 if (path, role) in NEEDS_PARAMS else 200
                    assert r.status_code == want, (path, role, r.text)
                else:
                    assert r.status_code == 403, (path, role, r.text)
                    assert r.json()["detail"]
                    refused[("projection", "forbidden")] += 1
        # an analyst reads closed days only (a single-room district's today is that room live)
        future = {"from": "2999-12-30", "to": "2999-12-31"}  # after today, whatever the date
        for path in ("/v1/districts/amager/daily", "/v1/city/summary"):
            r = await client.get(path, params=future, headers=auth(tokens["analyst"]))
            assert r.status_code == 403 and "closed days" in r.json()["detail"], r.text
            refused[("projection", "forbidden")] += 1
            r = await client.get(path, params=future, headers=auth(tokens["ops"]))
            assert r.status_code == 200, r.text
            r = await client.get(path, headers=auth(tokens["analyst"]))  # default: yesterday
            assert r.status_code == 200 and r.json()["from"] == r.json()["to"], r.text
        # a facility reads its own district's drug alerts (its front desk shows them), no other
        r = await client.get(
            "/v1/alerts", params={"district": "vesterbro"}, headers=auth(tokens[OWN])
        )
        assert r.status_code == 200, r.text
        r = await client.get("/v1/alerts", params={"district": "amager"}, headers=auth(tokens[OWN]))
        assert r.status_code == 403, r.text
        refused[("projection", "forbidden")] += 1
        # a facility reads only its own room
        for view in ("live", "stock", "daily"):
            base = "rooms" if view == "daily" else "facilities"
            r = await client.get(f"/v1/{base}/{OWN}/{view}", headers=auth(tokens[OTHER]))
            assert r.status_code == 403, r.text
            refused[("projection", "forbidden")] += 1
        # period totals and reports: a facility its own room, an analyst the city and districts
        # over closed periods (default: the last closed one), never a room
        today = datetime.now(UTC).date()
        around_today = {"period": "custom", "from": str(today - timedelta(days=2)),
                        "to": str(today + timedelta(days=2))}  # fmt: skip
        for path, params, role, want in (
            ("/v1/periods", {"scope": f"room:{OWN}"}, OWN, 200),
            ("/v1/periods", {"scope": f"room:{OTHER}"}, OWN, 403),
            ("/v1/periods", {"scope": "district:vesterbro"}, OWN, 403),
            ("/v1/reports", {"scope": f"room:{OWN}", "variant": "internal"}, OWN, 200),
            ("/v1/reports", {"scope": "city", "variant": "internal"}, OWN, 403),
            ("/v1/periods", {"scope": f"room:{OWN}"}, "analyst", 403),
            ("/v1/reports", {"scope": f"room:{OWN}", "variant": "internal"}, "analyst", 403),
            ("/v1/periods", {"scope": "district:amager", **around_today}, "analyst", 403),
            ("/v1/periods", {"scope": "district:amager", "period": "week"}, "analyst", 200),
            ("/v1/reports", {"scope": "district:amager", "variant": "internal"}, "analyst", 200),
            ("/v1/periods", {"scope": "district:amager", **around_today}, "ops", 200),
        ):
            r = await client.get(path, params=params, headers=auth(tokens[role]))
            assert r.status_code == want, (path, params, role, r.text)
            if want == 403:
                refused[("projection", "forbidden")] += 1
            elif path == "/v1/periods" and role == "analyst":
                assert r.json()["to"] < str(ctx_today_at_least(today)), r.json()
        after = auth_failures((await client.get("/metrics", headers=scrape_auth(iso_env))).text)
    assert after - before == refused


#: Each app built with the settings of the test's environment.
APPS: dict[str, Callable[[TestEnv], FastAPI]] = {
    "intake": lambda e: intake_app(config=e.ingest()),
    "supply": lambda e: supply_app(config=e.ingest()),
    "incident": lambda e: incident_app(config=e.incident()),
    "projection": lambda e: projection_app(e.projection()),
    "public": lambda e: public_app(config=e.projection()),
}


@pytest.mark.parametrize("service", list(APPS))
async def test_metrics_need_the_scraper_or_ops_token_and_healthz_shows_no_figures(
    service: str, iso_env: TestEnv
) -> None:
    tokens = iso_env.tokens
    async with serve(APPS[service](iso_env)) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers=auth("nope"))).status_code == 401
        for role in ("analyst", OWN, "sanitation-city"):
            r = await client.get("/metrics", headers=auth(tokens[role]))
            assert r.status_code == 403, (role, r.text)
        for role in ("prometheus", "ops"):
            r = await client.get("/metrics", headers=auth(tokens[role]))
            assert r.status_code == 200 and "dcr_http_requests_total" in r.text
        health = await client.get("/healthz")
        checks = health.json()["checks"]
        assert all(isinstance(v, bool) for v in checks.values()), checks  # up/down only
        assert "dcr_" not in health.text
