"""Every event type of the three ingest services, end to end to the real Kafka: the record's
CloudEvents headers, its key and its decoded payload."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from shared.events.catalogue import CATALOGUE
from shared.events.payloads import IncidentReported, VisitStarted
from shared.kafka import topics
from tests.integration.ingest.conftest import at, bearer, check_cloudevent, records_with_id

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration

# (service, path, principal, body, event type, expected payload subset).
# No overdose and no unexpected drug-check finding here: those raise drug alerts, which
# test_drug_alerts.py counts.
CASES: list[tuple[str, str, str, dict[str, Any], str, dict[str, Any]]] = [
    (
        "intake",
        "/v1/visits",
        "halmtorv",
        {"client_code": "HT-0001", "substances": ["heroin"], "route": "inject", "booth": 3},
        "dk.dcr.visit.started",
        {"substances": ["heroin"], "route": "inject", "booth": 3},
    ),
    (
        "intake",
        "/v1/visits/end",
        "halmtorv",
        {"visit_id": "v-e2e-1"},
        "dk.dcr.visit.ended",
        {"visit_id": "v-e2e-1"},
    ),
    (
        "intake",
        "/v1/refusals",
        "nordvest",
        {"reason": "capacity"},
        "dk.dcr.visit.refused",
        {"reason": "capacity", "client_pseudonym": None},
    ),
    (
        "intake",
        "/v1/referrals",
        "halmtorv",
        {"referral_to": "housing"},
        "dk.dcr.referral.made",
        {"referral_to": "housing"},
    ),
    (
        "intake",
        "/v1/services",
        "halmtorv",
        {"service": "wound_care"},
        "dk.dcr.service.given",
        {"service": "wound_care"},
    ),
    (
        "intake",
        "/v1/corrections/void",
        "halmtorv",
        {"target_event_id": "0b6f7e1c-3a52-4d4b-9a55-8c0d2b6a0e11", "reason": "mistaken"},
        "dk.dcr.report.voided",
        {"target_id": "0b6f7e1c-3a52-4d4b-9a55-8c0d2b6a0e11", "reason": "mistaken"},
    ),
    (
        "supply",
        "/v1/supplies/dispensed",
        "halmtorv",
        {"items": {"syringes": 10, "swabs": 20}, "secondary_distribution": True},
        "dk.dcr.supplies.dispensed",
        {"items": {"syringes": 10, "swabs": 20}, "secondary_distribution": True},
    ),
    (
        "supply",
        "/v1/sharps/returned",
        "halmtorv",
        {"count": 37, "weight_kg": 0.8},
        "dk.dcr.sharps.returned",
        {"count": 37, "weight_kg": 0.8},
    ),
    (
        "supply",
        "/v1/stock/deliveries",
        "sydhavn",
        {"items": {"needles": 1500}},
        "dk.dcr.stock.delivered",
        {"items": {"needles": 1500}},
    ),
    (
        "supply",
        "/v1/stock/counts",
        "sydhavn",
        {"items": {"needles": 1200, "foil": 0}},
        "dk.dcr.stock.counted",
        {"items": {"needles": 1200, "foil": 0}},
    ),
    (
        "supply",
        "/v1/street-needles",
        "sanitation-city",
        {"district": "amager", "area": "Amager Fælled", "count": 12},
        "dk.dcr.street_needles.collected",
        {"district": "amager", "area": "Amager Fælled", "count": 12},
    ),
    (
        "incident",
        "/v1/incidents",
        "amager",
        {
            "kind": "seizure",
            "severity": "moderate",
            "life_threatening": False,
            "interventions": {"oxygen": True},
            "outcome": "recovered_on_site",
        },
        "dk.dcr.incident.reported",
        {
            "kind": "seizure",
            "severity": "moderate",
            "life_threatening": False,
            "outcome": "recovered_on_site",
        },
    ),
    (
        "incident",
        "/v1/drug-checks",
        "amager",
        {"expected": "cocaine", "found": ["cocaine"]},
        "dk.dcr.drugcheck.result",
        {"expected": "cocaine", "found": ["cocaine"]},
    ),
]


def test_every_ingest_event_type_is_covered() -> None:
    covered = {c[4] for c in CASES}
    assert covered == {t for t, s in CATALOGUE.items() if s.topic != topics.ALERTS}


@pytest.mark.parametrize(
    ("service", "path", "principal", "body", "event_type", "expected"),
    CASES,
    ids=[c[4] for c in CASES],
)
async def test_event_reaches_kafka_as_a_cloudevent(
    test_env: TestEnv,
    intake: httpx.AsyncClient,
    supply: httpx.AsyncClient,
    incident: httpx.AsyncClient,
    service: str,
    path: str,
    principal: str,
    body: dict[str, Any],
    event_type: str,
    expected: dict[str, Any],
) -> None:
    client = {"intake": intake, "supply": supply, "incident": incident}[service]
    scope = "district" if "district" in body else "facility_id"
    full = {"occurred_at": at(2), **body}
    if scope == "facility_id":
        full["facility_id"] = principal
    r = await client.post(path, json=full, headers=bearer(test_env, principal))
    assert r.status_code == 202, r.text
    event_id = r.json()["event_id"]

    [record] = await records_with_id(test_env, CATALOGUE[event_type].topic, event_id)
    source_id = body["district"] if scope == "district" else principal
    kind = "districts" if scope == "district" else "facilities"
    env = check_cloudevent(
        record,
        event_id=event_id,
        event_type=event_type,
        source=f"/{kind}/{source_id}",
        key=source_id,
    )
    assert record.headers["ce_schemaversion"] == str(CATALOGUE[event_type].version).encode()
    payload = env.data.model_dump(mode="json")
    assert {k: payload[k] for k in expected} == expected
    if isinstance(env.data, VisitStarted):
        assert env.data.visit_id == r.json()["visit_id"]
        assert "HT-0001" not in (record.value or b"").decode()
    if isinstance(env.data, IncidentReported):
        assert env.data.incident_id == r.json()["incident_id"]
        assert env.data.interventions.oxygen is True


async def test_asyncapi_names_the_topics_the_app_publishes_to(
    test_env: TestEnv, intake: httpx.AsyncClient
) -> None:
    """The AsyncAPI document of an app built from settings names that app's topics (the test
    run's prefix, given to the app, not read from the environment)."""
    doc = (await intake.get("/asyncapi.json")).json()
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {test_env.topic(t) for t in topics.EVENT_TOPICS}
