"""Property-based fuzzing of every HTTP API from its OpenAPI schema (schemathesis + hypothesis).

The schemas are the services' own (``create_app().openapi()``, no client created); the requests
go over real HTTP to the four services running as uvicorn processes on the real Kafka and
PostgreSQL (``fault_services``: their own database and topic prefix). Generated data is valid
and invalid (schemathesis' positive and negative modes, plus its examples and coverage phases);
the bearer token is always a real one: the token of the facility the body names when it names
one, the sanitation team's on the street route, else a facility's; on the read API the ops
token. A share of the bodies is
steered to a real facility and a recent time so that cases get past authorisation and the time
window into the services' own checks and Kafka.

Property: no 5xx, ever; every refusal is a 4xx whose JSON ``detail`` says why; every success
conforms to the response schema the OpenAPI document declares (typed answers, issue 17).
Bounded: ``MAX_EXAMPLES`` fuzzed cases per operation (``DCR_FUZZ_EXAMPLES`` overrides it; the
heavy variant of ``make test-faults`` raises it), no deadline, derandomised (reproducible).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from pydantic import SecretStr
from schemathesis import Case
from schemathesis.checks import response_schema_conformance

from services.incident.app import create_app as create_incident
from services.incident.settings import NotifySettings
from services.incident.workers import IncidentConfig
from services.intake.app import create_app as create_intake
from services.projection.app import create_app as create_projection
from services.supply.app import create_app as create_supply
from shared.ingest.app import IngestConfig
from shared.settings import Environment, SecuritySettings
from tests.faults.conftest import Services, report

pytestmark = pytest.mark.integration

MAX_EXAMPLES = int(os.environ.get("DCR_FUZZ_EXAMPLES", "30"))
SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
STEERED_FACILITY = "halmtorv"

#: Settings for building the OpenAPI schemas only (the services under test are started by the
#: fixture, with DCR_ENV=test and their own secret): apps fail closed without them.
_SCHEMA_INGEST = IngestConfig(
    security=SecuritySettings(
        env=Environment.TEST, pseudonym_secret=SecretStr(secrets.token_hex(32))
    )
)
intake_api = schemathesis.openapi.from_dict(create_intake(config=_SCHEMA_INGEST).openapi())
supply_api = schemathesis.openapi.from_dict(create_supply(config=_SCHEMA_INGEST).openapi())
incident_api = schemathesis.openapi.from_dict(
    create_incident(
        config=IncidentConfig(
            notify=NotifySettings(DCR_ENV=Environment.TEST, enabled=False), ingest=_SCHEMA_INGEST
        )
    ).openapi()
)
projection_api = schemathesis.openapi.from_dict(create_projection().openapi())


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> dict[str, Any]:
    """``POST /v1/batch`` bodies: the generated value as one NDJSON line."""
    if isinstance(value, bytes):
        return {"data": value}
    return {"data": (json.dumps(value, default=str) + "\n").encode()}


_session = requests.Session()
#: (service, status) of every fuzzed request
SEEN: Counter[tuple[str, int]] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    """After the module: what the fuzzing reached. Some requests must have got through every
    check (202) and some must have been refused, else the steering is broken."""
    yield
    if SEEN:
        report(
            "schemathesis fuzzing",
            examples_per_operation=MAX_EXAMPLES,
            requests=sum(SEEN.values()),
            answers=dict(sorted(SEEN.items())),
        )
        for service in {service for service, _ in SEEN}:
            statuses = {status for svc, status in SEEN if svc == service}
            accepted = 200 if service == "projection" else 202
            assert accepted in statuses and 422 in statuses, (service, statuses)


def _steer(case: Case[Any]) -> None:
    """Half of the object bodies (chosen by a hash of the case, so reproducible) name a real
    facility and a time inside the accepted window."""
    body = case.body
    if not isinstance(body, dict):
        return
    digest = hashlib.sha256(repr(sorted(map(str, body.items()))).encode()).digest()
    if digest[0] % 2:
        return
    if "facility_id" in body:
        body["facility_id"] = STEERED_FACILITY
    if "occurred_at" in body:
        body["occurred_at"] = (datetime.now(UTC) - timedelta(minutes=digest[1] % 120)).isoformat()


def _steer_path(case: Case[Any]) -> None:
    """Half of the read-API cases (by a hash of the case) ask for a real district or facility,
    so that their dates and limits reach the queries instead of a 404."""
    params = case.path_parameters
    if not params:
        return
    if hashlib.sha256(repr(sorted(params.items())).encode()).digest()[0] % 2:
        return
    if "district" in params:
        params["district"] = "vesterbro"
    if "facility" in params:
        params["facility"] = STEERED_FACILITY


def _principal(case: Case[Any], tokens: dict[str, str]) -> str:
    body = case.body if isinstance(case.body, dict) else {}
    if case.path == "/v1/street-needles":
        return "sanitation-city"
    facility = body.get("facility_id")
    return facility if isinstance(facility, str) and facility in tokens else STEERED_FACILITY


def _call(case: Case[Any], services: Services, service: str) -> None:
    if service == "projection":
        _steer_path(case)
        token = services.env.tokens["ops"]  # the read API's widest role
    else:
        _steer(case)
        token = services.env.tokens[_principal(case, services.env.tokens)]
    if case.headers is None:
        case.headers = {}
    for name in [k for k in case.headers if k.lower() == "authorization"]:
        del case.headers[name]
    case.headers["Authorization"] = f"Bearer {token}"
    response = case.call(base_url=services.url(service), session=_session, timeout=30)
    SEEN[(service, response.status_code)] += 1
    what = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    assert response.status_code < 500, what
    if response.status_code < 300:  # the answer is what the OpenAPI schema documents
        case.validate_response(response, checks=[response_schema_conformance])
    if response.status_code >= 400:
        detail: Any = json.loads(response.text).get("detail")
        assert detail, what
        if isinstance(detail, list):
            assert all(d.get("msg") and d.get("loc") for d in detail), what


@intake_api.parametrize()
@SETTINGS
def test_intake_api(case: Case[Any], fault_services: Services) -> None:
    _call(case, fault_services, "intake")


@supply_api.parametrize()
@SETTINGS
def test_supply_api(case: Case[Any], fault_services: Services) -> None:
    _call(case, fault_services, "supply")


@incident_api.parametrize()
@SETTINGS
def test_incident_api(case: Case[Any], fault_services: Services) -> None:
    _call(case, fault_services, "incident")


@projection_api.parametrize()
@SETTINGS
def test_projection_api(case: Case[Any], fault_services: Services) -> None:
    _call(case, fault_services, "projection")
