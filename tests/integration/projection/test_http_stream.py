"""A scripted stream posted through the ingest APIs (intake, supply, incident) yields read models
equal to values computed independently (hand-written figures and the oracle), including the
public (suppressed) view, the city summary, facility live and stock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from statistics import median
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from services.incident.app import create_app as incident_app
from services.intake.app import create_app as intake_app
from services.projection.app import create_app as projection_app
from services.projection.public_app import create_app as public_app
from services.supply.app import create_app as supply_app
from tests.integration.projection.harness import (
    api_days,
    assert_api_matches_oracle,
    log_records,
    public_api,
    wait_caught_up,
)
from tests.support import auth, ops_auth, poll_until, serve
from tests.unit.projection.factory import CITY
from tests.unit.projection.oracle import Oracle

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = [pytest.mark.integration, pytest.mark.clock]
ZONE = CITY.zone


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=ZONE)


async def post(client: httpx.AsyncClient, path: str, token: str, **body: Any) -> dict[str, Any]:
    for k, v in list(body.items()):
        if isinstance(v, datetime):
            body[k] = v.isoformat()
    r = await client.post(f"/v1{path}", json=body, headers=auth(token))
    assert r.status_code == 202, (path, r.text)
    result: dict[str, Any] = r.json()
    return result


async def test_scripted_stream_through_the_ingest_apis(iso_env: TestEnv) -> None:
    today = datetime.now(ZONE).date()
    # Two and three days ago, not yesterday: the two visits that never end (d2, 16:00 and 17:10)
    # must be older than the 12 stale hours at any hour of today (else they occupy booths in
    # "live" below when the test runs between midnight and 05:10).
    d1, d2 = today - timedelta(days=3), today - timedelta(days=2)
    ht, nv, san = (iso_env.tokens[k] for k in ("halmtorv", "nordvest", "sanitation-city"))

    async with (
        serve(intake_app(config=iso_env.ingest())) as intake,
        serve(supply_app(config=iso_env.ingest())) as supply,
        serve(incident_app(config=iso_env.incident())) as incident,
        serve(projection_app(iso_env.projection()), headers=ops_auth(iso_env)) as projection,
    ):
        # --- day 2 (two days ago), halmtorv in vesterbro: 8 visits, 6 inject + 2 smoke ---------
        durations = [10, 20, 30, 40, 50, 60]  # minutes, for the first six (two never end)
        clients = ["A", "B", "A", "C", "D", "E", "F", "B"]
        for i, code in enumerate(clients):
            start = local(d2, 9, 0) + timedelta(minutes=70 * i)
            route = "smoke" if i in (3, 6) else "inject"
            v = await post(
                intake,
                "/visits",
                ht,
                facility_id="halmtorv",
                occurred_at=start,
                client_code=code,
                substances=["heroin", "cocaine"] if i == 0 else ["heroin"],
                route=route,
                first_visit=i == 1,
                assisted_injection=i == 2,
            )
            if i < len(durations):
                await post(
                    intake,
                    "/visits/end",
                    ht,
                    facility_id="halmtorv",
                    occurred_at=start + timedelta(minutes=durations[i]),
                    visit_id=v["visit_id"],
                )
        for reason in ("capacity", "capacity", "intoxicated"):
            await post(
                intake,
                "/refusals",
                ht,
                facility_id="halmtorv",
                occurred_at=local(d2, 12),
                reason=reason,
                client_code="Z",
            )
        await post(
            intake,
            "/referrals",
            ht,
            facility_id="halmtorv",
            occurred_at=local(d2, 13),
            referral_to="housing",
        )
        await post(
            intake,
            "/services",
            ht,
            facility_id="halmtorv",
            occurred_at=local(d2, 13),
            service="wound_care",
        )
        # nordvest: 5 visits, all inject, all ended after 15 minutes
        for i in range(5):
            start = local(d2, 10) + timedelta(minutes=30 * i)
            v = await post(
                intake,
                "/visits",
                nv,
                facility_id="nordvest",
                occurred_at=start,
                client_code=f"N{i}",
                substances=["amphetamine"],
                route="inject",
            )
            await post(
                intake,
                "/visits/end",
                nv,
                facility_id="nordvest",
                occurred_at=start + timedelta(minutes=15),
                visit_id=v["visit_id"],
            )
        # supplies, stock, sharps, street needles
        await post(
            supply,
            "/stock/deliveries",
            ht,
            facility_id="halmtorv",
            occurred_at=local(d1, 8),
            items={"syringes": 1000, "foil": 100},
        )
        await post(
            supply,
            "/supplies/dispensed",
            ht,
            facility_id="halmtorv",
            occurred_at=local(d2, 11),
            items={"syringes": 30, "swabs": 60},
        )
        await post(
            supply,
            "/stock/counts",
            ht,
            facility_id="halmtorv",
            occurred_at=local(d2, 10),
            items={"syringes": 900},
        )
        await post(
            supply,
            "/supplies/dispensed",
            ht,
            facility_id="halmtorv",
            occurred_at=local(d2, 9),
            items={"syringes": 5},
        )  # before the count
        await post(
            supply,
            "/sharps/returned",
            ht,
            facility_id="halmtorv",
            occurred_at=local(d2, 18),
            count=40,
            weight_kg=0.1,
        )
        await post(
            supply,
            "/sharps/returned",
            ht,
            facility_id="halmtorv",
            occurred_at=local(d2, 19),
            weight_kg=0.2,
        )
        await post(
            supply,
            "/street-needles",
            san,
            district="amager",
            occurred_at=local(d2, 7),
            area="Amagerfælled",
            count=17,
            weight_kg=0.35,
        )
        # incidents (old enough not to raise a drug alert) and drug checks
        await post(
            incident,
            "/incidents",
            ht,
            facility_id="halmtorv",
            occurred_at=local(d2, 15),
            kind="opioid_overdose",
            severity="severe",
            life_threatening=True,
            outcome="transferred_to_hospital",
            interventions={"naloxone_doses": 2, "ambulance_called": True},
        )
        await post(
            incident,
            "/incidents",
            ht,
            facility_id="halmtorv",
            occurred_at=local(d2, 16),
            kind="seizure",
            severity="moderate",
            life_threatening=False,
            outcome="recovered_on_site",
        )
        await post(
            incident,
            "/drug-checks",
            ht,
            facility_id="halmtorv",
            occurred_at=local(d2, 17),
            expected="heroin",
            found=["heroin"],
        )
        # --- a late report for day 1 arrives after day 2's ------------------------------
        await post(
            intake,
            "/refusals",
            ht,
            facility_id="halmtorv",
            occurred_at=local(d1, 23, 59),
            reason="closed",
        )

        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)

        # hand-computed figures
        days = await api_days(projection, ["vesterbro", "nordvest", "amager"], d1, d2)
        vb = days[("vesterbro", d2)]
        assert vb["visits"] == 8 and vb["unique_clients"] == 6 and vb["new_clients"] == 1
        assert vb["assisted_injections"] == 1 and vb["visits_completed"] == 6
        assert vb["visit_minutes_median"] == 35.0 and vb["visit_minutes_mean"] == 35.0
        assert vb["visits_by_route"] == {"inject": 6, "smoke": 2}
        assert vb["visits_by_substance"] == {"heroin": 8, "cocaine": 1}
        assert vb["refusals"] == 3 and vb["refusals_by_reason"] == {"capacity": 2, "intoxicated": 1}
        assert vb["supplies_dispensed"] == 95 and vb["supplies_by_item"] == {
            "syringes": 35,
            "swabs": 60,
        }
        assert vb["sharps_returned_count"] == 40 and vb["sharps_returned_kg"] == 0.3
        assert vb["incidents"] == 2 and vb["overdoses"] == 1 and vb["naloxone_doses"] == 2
        assert vb["hospital_transfers"] == 1 and vb["ambulance_calls"] == 1
        assert vb["life_threatening"] == 1 and "deaths" not in vb
        assert days[("vesterbro", d1)] == {"refusals": 1, "refusals_by_reason": {"closed": 1}}
        assert days[("nordvest", d2)]["visit_minutes_median"] == 15.0
        assert days[("amager", d2)] == {"street_needles_count": 17, "street_needles_kg": 0.35}

        # the oracle, fed with what is in the log
        oracle = Oracle(CITY).feed_records(
            await log_records(iso_env.bootstrap, iso_env.topic_prefix)
        )
        assert oracle.rejected == 0
        # every read surface, the released public days included (checked by the oracle's rule)
        async with public_api(iso_env, oracle, d1, d2) as public:
            await assert_api_matches_oracle(projection, oracle, d1, d2, public=public)

        # city summary: sums, and the median over every district's visits
        r = await projection.get(
            "/v1/city/summary", params={"from": d1.isoformat(), "to": d2.isoformat()}
        )
        assert r.status_code == 200
        city = {date.fromisoformat(d["day"]): d for d in r.json()["days"]}
        assert city[d2]["visits"] == 13 and city[d2]["unique_clients"] == 11
        assert city[d2]["visits_by_route"]["inject"] == 11
        assert city[d2]["visit_minutes_median"] == float(
            median([Decimal(m) for m in [*durations, 15, 15, 15, 15, 15]])
        )
        assert city[d2]["visit_minutes_mean"] == round((sum(durations) + 75) / 11, 2)
        assert city[d1]["refusals"] == 1 and city[d2]["street_needles_kg"] == 0.35
        assert r.json()["lag_events"] == 0 and r.json()["data_complete_until"] is not None

        # public view (its own app; "now" two days on, so both days are released): small
        # cells hidden, with complements where a total would reveal them
        later = datetime.now(UTC) + timedelta(days=2)
        async with serve(public_app(clock=lambda: later, config=iso_env.projection())) as public:
            r = await public.get(f"/v1/public/day/{d2.isoformat()}")
            assert r.status_code == 200, r.text
            pub = r.json()["tables"]["vesterbro"]
            assert pub["visits_by_route"]["smoke"] is None  # 2: primary
            # 8 visits, 6 inject: the inject cell or the total must be hidden too
            assert pub["visits_by_route"]["inject"] is None or pub["visits"] is None
            assert pub["refusals"] is None and pub["refusals_by_reason"]["capacity"] is None
            assert pub["supplies_by_item"]["syringes"] == 35  # quantities are not suppressed
            assert "visits_by_route.smoke" in pub["suppressed"]
            pub_city = r.json()["tables"]["city"]
            assert pub_city["visits_by_route"]["smoke"] is None

        # stock: the count at 10:00 replaces what came before it; later dispensing subtracts
        r = await projection.get("/v1/facilities/halmtorv/stock")
        stock = {i["item"]: i for i in r.json()["items"]}
        assert stock["syringes"]["on_hand"] == 900 - 30 == oracle.on_hand("halmtorv", "syringes")
        assert stock["foil"]["on_hand"] == 100 and stock["swabs"]["on_hand"] == -60

        # live: a visit now occupies a booth until it ends
        live = (await projection.get("/v1/facilities/halmtorv/live")).json()
        assert live["booths_total"] == 12 and live["booths_in_use"] == 0
        v = await post(
            intake,
            "/visits",
            ht,
            facility_id="halmtorv",
            occurred_at=datetime.now(UTC),
            client_code="A",
            substances=["heroin"],
            route="inject",
        )

        async def booth_state(in_use: int) -> dict[str, Any] | None:
            body: dict[str, Any] = (await projection.get("/v1/facilities/halmtorv/live")).json()
            return body if body["booths_in_use"] == in_use else None

        live = await poll_until(lambda: booth_state(1), what="one booth in use")
        assert live["visits_today"] == 1 and live["booths_free"] == 11
        await post(
            intake,
            "/visits/end",
            ht,
            facility_id="halmtorv",
            occurred_at=datetime.now(UTC),
            visit_id=v["visit_id"],
        )
        await poll_until(lambda: booth_state(0), what="booth free again")


async def test_read_api_validation(iso_env: TestEnv) -> None:
    async with serve(projection_app(iso_env.projection()), headers=ops_auth(iso_env)) as projection:
        r = await projection.get("/v1/districts/atlantis/daily")
        assert r.status_code == 404
        r = await projection.get("/v1/districts/vesterbro/daily", params={"from": "2026-13-01"})
        assert r.status_code == 422
        r = await projection.get(
            "/v1/districts/vesterbro/daily", params={"from": "2026-02-02", "to": "2026-02-01"}
        )
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "from"]
        r = await projection.get(
            "/v1/city/summary", params={"from": "2020-01-01", "to": "2026-01-01"}
        )
        assert r.status_code == 422
        r = await projection.get("/v1/facilities/atlantis/live")
        assert r.status_code == 404
        r = await projection.get("/v1/districts")
        assert [d["id"] for d in r.json()["districts"]] == [d.id for d in CITY.districts]
        r = await projection.get("/v1/alerts")
        assert r.status_code == 200 and r.json()["alerts"] == []
        before = datetime.now(ZONE).date().isoformat()
        r = await projection.get("/v1/districts/vesterbro/daily")
        body = r.json()
        after = datetime.now(ZONE).date().isoformat()  # midnight may pass meanwhile
        assert body["from"] == body["to"] in {before, after}
        assert {"data_complete_until", "lag_events"} <= set(body)
