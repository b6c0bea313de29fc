"""Supply's composition root (``uvicorn services.supply.app:create_app --factory``)."""

from __future__ import annotations

from fastapi import FastAPI

from services.supply.routes import ROUTES
from shared.ingest.api import IngestDeps
from shared.ingest.app import IngestConfig, create_ingest_app


def create_app(deps: IngestDeps | None = None, config: IngestConfig | None = None) -> FastAPI:
    """``deps`` (unit tests): fakes, no client; ``config``: the settings to build the clients
    from (default: the environment's, built once)."""
    return create_ingest_app(
        "supply",
        "dcr-platform supply",
        "Facilities report supplies dispensed, sharps returned and stock (deliveries, counts); "
        "the city's sanitation teams report needles collected in the street, per district.",
        ROUTES,
        deps,
        config=config,
    )
