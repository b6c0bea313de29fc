"""API documentation: OpenAPI with a valid example per route, AsyncAPI for every topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from services.incident import routes as incident_routes
from services.incident.app import create_app as create_incident
from services.intake import routes as intake_routes
from services.intake.app import create_app as create_intake
from services.supply import routes as supply_routes
from services.supply.app import create_app as create_supply
from shared.events.catalogue import CATALOGUE
from shared.ingest.api import IngestDeps, IngestRoute
from shared.kafka.topics import EVENT_TOPICS
from shared.settings import KafkaSettings
from tests.support import serve
from tests.unit.ingest.conftest import make_deps

APPS: dict[str, Callable[[IngestDeps], FastAPI]] = {
    "intake": create_intake,
    "supply": create_supply,
    "incident": create_incident,
}
ROUTES: dict[str, tuple[IngestRoute[Any], ...]] = {
    "intake": intake_routes.ROUTES,
    "supply": supply_routes.ROUTES,
    "incident": incident_routes.ROUTES,
}


@pytest.mark.parametrize("service", sorted(APPS))
def test_every_route_has_an_example_that_validates(service: str) -> None:
    app = APPS[service](make_deps(service))
    schema = app.openapi()
    posts = {  # the ingest routes (incident's body-less POST /v1/alerts/{id}/ack aside)
        path: ops["post"]
        for path, ops in schema["paths"].items()
        if "post" in ops and "requestBody" in ops["post"]
    }
    batch = posts.pop("/v1/batch")  # NDJSON of lines naming these routes (test_batch.py)
    assert "application/x-ndjson" in batch["requestBody"]["content"]
    assert set(posts) == {"/v1" + r.path for r in ROUTES[service]}
    models = {r.request_model.__name__: r.request_model for r in ROUTES[service]}
    for path, op in posts.items():
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        name = ref.rsplit("/", 1)[1]
        examples: list[dict[str, Any]] = schema["components"]["schemas"][name].get("examples", [])
        assert examples, f"{path} has no example"
        for example in examples:
            models[name].model_validate(example)  # the documented example is a valid request


@pytest.mark.parametrize("service", sorted(APPS))
async def test_docs_and_asyncapi_are_served(service: str) -> None:
    async with serve(APPS[service](make_deps(service))) as client:
        assert (await client.get("/docs")).status_code == 200
        doc = (await client.get("/asyncapi.json")).json()
    assert doc["asyncapi"].startswith("3.")
    channels = doc["channels"]
    assert set(channels) == set(CATALOGUE)
    # physical topic names (prefixed when DCR_KAFKA_TOPIC_PREFIX is set)
    assert {c["address"] for c in channels.values()} == {
        KafkaSettings().topic(t) for t in EVENT_TOPICS
    }
    for event_type, spec in CATALOGUE.items():
        message = doc["components"]["messages"][f"{event_type}:Message"]
        payload_ref = message["payload"]["$ref"].rsplit("/", 1)[1]
        assert payload_ref == spec.model.__name__
        assert set(doc["components"]["schemas"][payload_ref]["properties"]) == set(
            spec.model.model_fields
        )
