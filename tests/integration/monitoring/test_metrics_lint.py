"""Every service's /metrics, after real requests, passes ``promtool check metrics`` (non-zero exit
or any finding fails) and carries only bounded labels: never a client code or pseudonym, a visit
id or an incident id. The projection also exports the domain metrics (install_domain_metrics is
wired into its lifespan).

The apps run in-process (tests.support.serve) on the real Kafka and PostgreSQL of an isolated
database and topic prefix (conftest.iso_env), built with its settings (``TestEnv.platform``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI

from services.incident.app import create_app as create_incident
from services.intake.app import create_app as create_intake
from services.projection.app import create_app as create_projection
from services.supply.app import create_app as create_supply
from tests.integration.monitoring.exposition import label_problems, promtool_check
from tests.support import ops_auth, poll_until, scrape_auth, serve

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration

CLIENT_CODE = "HT-LINT-0042"


def _at(minutes_ago: float = 1.0) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


def _auth(env: TestEnv, principal: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {env.tokens[principal]}",
        "Idempotency-Key": uuid.uuid4().hex,
    }


async def _intake(c: httpx.AsyncClient, env: TestEnv) -> list[str]:
    ok = await c.post(
        "/v1/visits",
        headers=_auth(env, "halmtorv"),
        json={
            "facility_id": "halmtorv",
            "occurred_at": _at(),
            "client_code": CLIENT_CODE,
            "substances": ["heroin"],
            "route": "inject",
        },
    )
    assert ok.status_code == 202, ok.text
    visit_id = ok.json()["visit_id"]
    end = await c.post(
        "/v1/visits/end",
        headers=_auth(env, "halmtorv"),
        json={"facility_id": "halmtorv", "occurred_at": _at(0.5), "visit_id": visit_id},
    )
    assert end.status_code == 202, end.text
    bad = await c.post("/v1/visits", headers={"Authorization": "Bearer nope"}, json={})
    assert bad.status_code == 401
    invalid = await c.post("/v1/refusals", headers=_auth(env, "halmtorv"), json={"x": 1})
    assert invalid.status_code == 422
    return [visit_id]


async def _supply(c: httpx.AsyncClient, env: TestEnv) -> list[str]:
    ok = await c.post(
        "/v1/supplies/dispensed",
        headers=_auth(env, "halmtorv"),
        json={"facility_id": "halmtorv", "occurred_at": _at(), "items": {"syringes": 5}},
    )
    assert ok.status_code == 202, ok.text
    forbidden = await c.post(
        "/v1/street-needles",
        headers=_auth(env, "halmtorv"),
        json={"district": "vesterbro", "occurred_at": _at(), "area": "x", "count": 1},
    )
    assert forbidden.status_code == 403
    return []


async def _incident(c: httpx.AsyncClient, env: TestEnv) -> list[str]:
    # no overdose and no unexpected finding: nothing here raises a drug alert
    ok = await c.post(
        "/v1/incidents",
        headers=_auth(env, "halmtorv"),
        json={
            "facility_id": "halmtorv",
            "occurred_at": _at(),
            "kind": "violence",
            "severity": "low",
            "life_threatening": False,
            "outcome": "left",
        },
    )
    assert ok.status_code == 202, ok.text
    return [ok.json()["incident_id"]]


async def _projection(c: httpx.AsyncClient, env: TestEnv) -> list[str]:
    assert (await c.get("/v1/districts", headers=ops_auth(env))).status_code == 200
    assert (await c.get("/v1/districts/vesterbro/daily", headers=ops_auth(env))).status_code == 200
    assert (await c.get("/v1/districts/atlantis/daily", headers=ops_auth(env))).status_code == 404
    return []


Traffic = Callable[[httpx.AsyncClient, "TestEnv"], Any]
#: Each app built with the settings of the module's isolated environment (no os.environ change).
APPS: dict[str, tuple[Callable[[TestEnv], FastAPI], Traffic]] = {
    "intake": (lambda e: create_intake(config=e.ingest()), _intake),
    "supply": (lambda e: create_supply(config=e.ingest()), _supply),
    "incident": (lambda e: create_incident(config=e.incident()), _incident),
    "projection": (lambda e: create_projection(e.projection()), _projection),
}


async def _healthy(c: httpx.AsyncClient) -> bool:
    return (await c.get("/healthz")).status_code == 200


@pytest.mark.parametrize("service", list(APPS))
async def test_metrics_pass_promtool_and_have_bounded_labels(
    service: str, iso_env: TestEnv
) -> None:
    factory, traffic = APPS[service]
    async with serve(factory(iso_env)) as client:
        await poll_until(lambda: _healthy(client), timeout=30, what=f"{service} healthy")
        ids = await traffic(client, iso_env)
        response = await client.get("/metrics", headers=scrape_auth(iso_env))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert f'service="{service}"' in text, "the service's own requests are counted"
    findings = await asyncio.to_thread(promtool_check, text)
    assert findings == "", f"promtool check metrics findings for {service}:\n{findings}"
    problems = label_problems(text, frozenset({CLIENT_CODE, *ids}))
    assert problems == [], "\n".join(problems)


async def test_projection_exports_domain_metrics(iso_env: TestEnv) -> None:
    """services/projection/app.py calls install_domain_metrics in its lifespan."""
    async with serve(create_projection(iso_env.projection())) as client:
        await poll_until(lambda: _healthy(client), timeout=30, what="projection healthy")

        async def domain_metrics() -> str | None:
            text = (await client.get("/metrics", headers=scrape_auth(iso_env))).text
            return text if "dcr_visits_started_total{" in text else None

        try:
            text = await poll_until(domain_metrics, timeout=20, interval=0.5, what="metrics")
        except AssertionError:
            pytest.fail(
                "the projection exports no domain metrics: wire them into the lifespan of "
                "services/projection/app.py, after the pool is created: "
                "install_domain_metrics(pool, city, settings)"
            )
    assert text is not None
    for name in (
        "dcr_facility_open",
        "dcr_district_visits_today",
        "dcr_incidents_total",
        "dcr_domain_metrics_last_refresh_timestamp_seconds",
    ):
        assert f"\n{name}" in text, name
    assert await asyncio.to_thread(promtool_check, text) == ""
