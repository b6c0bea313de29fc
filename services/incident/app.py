"""Incident's composition root (``uvicorn services.incident.app:create_app --factory``)."""

from __future__ import annotations

from fastapi import FastAPI

from services.incident.alert_worker import run_alert_worker
from services.incident.routes import ROUTES
from shared.ingest.api import IngestDeps
from shared.ingest.app import create_ingest_app


def create_app(deps: IngestDeps | None = None) -> FastAPI:
    """With injected ``deps`` (unit tests) the drug alert worker is not started: it needs the
    real Kafka and PostgreSQL, and its rule is tested on its own."""
    return create_ingest_app(
        "incident",
        "dcr-platform incident",
        "Facilities report incidents (overdoses, seizures, violence, ...) with the interventions "
        "given, and drug-check results. A drug alert is raised on dcr.alerts when a district's "
        "overdoses cluster or a drug check finds an unexpected substance.",
        ROUTES,
        deps,
        background=run_alert_worker if deps is None else None,
    )
