"""Each supply and incident route turns its request into the right event (fakes, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.events import payloads as p
from shared.events.catalogue import CATALOGUE
from shared.events.vocabulary import IncidentKind, Outcome, Severity, Substance, SupplyItem
from tests.unit.ingest.conftest import Harness, ago, bearer


async def post_one(
    h: Harness, path: str, body: dict[str, Any], principal: str = "halmtorv"
) -> tuple[dict[str, Any], p.Payload]:
    r = await h.client.post(path, json={"occurred_at": ago(3), **body}, headers=bearer(principal))
    assert r.status_code == 202, r.text
    [env] = h.publisher.published
    assert str(env.id) == r.json()["event_id"] and env.type == r.json()["type"]
    assert CATALOGUE[env.type].model is type(env.data)
    answer: dict[str, Any] = r.json()
    return answer, env.data


async def test_supplies_dispensed(supply: Harness) -> None:
    _, data = await post_one(
        supply,
        "/v1/supplies/dispensed",
        {
            "facility_id": "halmtorv",
            "items": {"syringes": 10, "foil": 5},
            "secondary_distribution": True,
            "visit_id": "v-1",
        },
    )
    assert data == p.SuppliesDispensed(
        items={SupplyItem.SYRINGES: 10, SupplyItem.FOIL: 5},
        secondary_distribution=True,
        visit_id="v-1",
    )


@pytest.mark.parametrize(
    "amount", [{"count": 40}, {"weight_kg": 1.25}, {"count": 40, "weight_kg": 1.25}]
)
async def test_sharps_returned(supply: Harness, amount: dict[str, Any]) -> None:
    _, data = await post_one(supply, "/v1/sharps/returned", {"facility_id": "halmtorv", **amount})
    assert data == p.SharpsReturned(**amount)


async def test_sharps_need_a_count_or_a_weight(supply: Harness) -> None:
    r = await supply.client.post(
        "/v1/sharps/returned",
        json={"facility_id": "halmtorv", "occurred_at": ago()},
        headers=bearer("halmtorv"),
    )
    assert r.status_code == 422
    assert "count" in r.json()["detail"][0]["msg"]
    assert supply.publisher.published == []


async def test_stock_delivered_and_counted(supply: Harness) -> None:
    _, data = await post_one(
        supply, "/v1/stock/deliveries", {"facility_id": "halmtorv", "items": {"needles": 2000}}
    )
    assert data == p.StockDelivered(items={SupplyItem.NEEDLES: 2000})
    supply.publisher.published.clear()
    _, data = await post_one(
        supply,
        "/v1/stock/counts",
        {"facility_id": "halmtorv", "items": {"needles": 0, "swabs": 300}},
    )
    assert data == p.StockCounted(items={SupplyItem.NEEDLES: 0, SupplyItem.SWABS: 300})


async def test_street_needles(supply: Harness) -> None:
    _, data = await post_one(
        supply,
        "/v1/street-needles",
        {"district": "sydhavn", "area": "Mozarts Plads", "weight_kg": 0.4},
        "sanitation-city",
    )
    assert data == p.StreetNeedlesCollected(district="sydhavn", area="Mozarts Plads", weight_kg=0.4)


async def test_incident_issues_and_echoes_an_incident_id(incident: Harness) -> None:
    answer, data = await post_one(
        incident,
        "/v1/incidents",
        {
            "facility_id": "halmtorv",
            "kind": "opioid_overdose",
            "severity": "critical",
            "life_threatening": True,
            "outcome": "transferred_to_hospital",
            "interventions": {
                "naloxone_doses": 3,
                "oxygen": True,
                "cpr": True,
                "ambulance_called": True,
            },
            "suspected_substance": "fentanyl",
            "visit_id": "v-9",
        },
    )
    assert isinstance(data, p.IncidentReported)
    assert answer["incident_id"] == data.incident_id and len(data.incident_id) >= 16
    assert data == p.IncidentReported(
        incident_id=data.incident_id,
        kind=IncidentKind.OPIOID_OVERDOSE,
        severity=Severity.CRITICAL,
        life_threatening=True,
        interventions=p.Interventions(
            naloxone_doses=3, oxygen=True, cpr=True, ambulance_called=True
        ),
        outcome=Outcome.TRANSFERRED_TO_HOSPITAL,
        suspected_substance=Substance.FENTANYL,
        visit_id="v-9",
    )


async def test_incident_ids_differ_per_incident(incident: Harness) -> None:
    body = {
        "facility_id": "halmtorv",
        "occurred_at": ago(),
        "kind": "seizure",
        "severity": "moderate",
        "life_threatening": False,
        "outcome": "recovered_on_site",
    }
    a = await incident.client.post("/v1/incidents", json=body, headers=bearer("halmtorv"))
    b = await incident.client.post("/v1/incidents", json=body, headers=bearer("halmtorv"))
    assert a.json()["incident_id"] != b.json()["incident_id"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("interventions", {"naloxone_doses": 50}),
        ("interventions", {"defibrillator": True}),
        ("kind", "alien_abduction"),
        ("life_threatening", None),
    ],
)
async def test_incident_validation(incident: Harness, field: str, value: Any) -> None:
    body = {
        "facility_id": "halmtorv",
        "occurred_at": ago(),
        "kind": "opioid_overdose",
        "severity": "severe",
        "life_threatening": True,
        "outcome": "recovered_on_site",
        field: value,
    }
    r = await incident.client.post("/v1/incidents", json=body, headers=bearer("halmtorv"))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][:2] == ["body", field]


async def test_drug_check(incident: Harness) -> None:
    _, data = await post_one(
        incident,
        "/v1/drug-checks",
        {"facility_id": "halmtorv", "expected": "heroin", "found": ["heroin", "fentanyl"]},
    )
    assert data == p.DrugCheckResult(
        expected=Substance.HEROIN, found=(Substance.HEROIN, Substance.FENTANYL)
    )
    assert isinstance(data, p.DrugCheckResult) and data.unexpected == {Substance.FENTANYL}


async def test_drug_check_needs_a_finding(incident: Harness) -> None:
    r = await incident.client.post(
        "/v1/drug-checks",
        json={"facility_id": "halmtorv", "occurred_at": ago(), "expected": "heroin", "found": []},
        headers=bearer("halmtorv"),
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "found"]
