"""Foundation: a visit posted to intake shows up in the district's daily figures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from services.intake.app import create_app as intake_app
from services.projection.app import create_app as projection_app
from tests.support import auth, ops_auth, poll_until, serve

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = [pytest.mark.integration, pytest.mark.clock]


async def test_visit_started_counts_in_district_daily(iso_env: TestEnv) -> None:
    now = datetime.now(UTC)
    day = now.astimezone(ZoneInfo("Europe/Copenhagen")).date().isoformat()  # the visit's day
    async with (
        serve(intake_app(config=iso_env.ingest())) as intake,
        serve(projection_app(iso_env.projection()), headers=ops_auth(iso_env)) as projection,
    ):
        posted = await intake.post(
            "/v1/visits",
            json={
                "facility_id": "halmtorv",
                "occurred_at": now.isoformat(),
                "client_code": "HT-0042",
                "substances": ["heroin"],
                "route": "inject",
            },
            headers=auth(iso_env.tokens["halmtorv"]),
        )
        assert posted.status_code == 202, posted.text

        async def figures() -> dict[str, Any] | None:
            r = await projection.get(
                "/v1/districts/vesterbro/daily", params={"from": day, "to": day}
            )
            assert r.status_code == 200, r.text
            (figures,) = r.json()["days"]
            assert figures["day"] == day
            return figures if figures["visits"] == 1 else None

        got = await poll_until(figures, timeout=30, what="visits == 1 in district_daily")
        assert got["unique_clients"] == 1
        assert got["visits_by_route"]["inject"] == 1
        health = await projection.get("/healthz")
        assert health.status_code == 200, health.text
