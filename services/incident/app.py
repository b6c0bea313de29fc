"""Incident's composition root (``uvicorn services.incident.app:create_app --factory``)."""

from __future__ import annotations

from fastapi import FastAPI

from services.incident.alert_routes import alert_router
from services.incident.routes import ROUTES
from services.incident.workers import IncidentConfig, incident_workers
from shared.ingest.api import IngestDeps
from shared.ingest.app import create_ingest_app


def create_app(deps: IngestDeps | None = None, config: IncidentConfig | None = None) -> FastAPI:
    """With injected ``deps`` (unit tests) the drug alert worker and the notifier are not
    started: they need the real Kafka and PostgreSQL, and their cores are tested on their own.
    ``config``: default from the environment (built once here, not when ``deps`` are given)."""
    if deps is None:
        config = config or IncidentConfig()
    app = create_ingest_app(
        "incident",
        "dcr-platform incident",
        "Facilities report incidents (overdoses, seizures, violence, ...) with the interventions "
        "given, and drug-check results. A drug alert is raised on dcr.alerts when a district's "
        "overdoses cluster or a drug check finds an unexpected substance.",
        ROUTES,
        deps,
        background=incident_workers(config) if config is not None else None,
        platform=config.platform if config is not None else None,
        config=config.ingest if config is not None else None,
    )
    app.include_router(alert_router(), prefix="/v1", tags=["alerts"])
    return app
