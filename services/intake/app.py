"""Intake's composition root (``uvicorn services.intake.app:create_app --factory``)."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake.routes import ROUTES
from shared.ingest.api import IngestDeps
from shared.ingest.app import IngestConfig, create_ingest_app


def create_app(deps: IngestDeps | None = None, config: IngestConfig | None = None) -> FastAPI:
    """``deps`` (unit tests): fakes, no client; ``config``: the settings to build the clients
    from (default: the environment's, built once)."""
    return create_ingest_app(
        "intake",
        "dcr-platform intake",
        "Facilities report visits, refusals, referrals and on-site services. Client codes are "
        "pseudonymised on arrival (keyed HMAC) and never leave this service in clear.",
        ROUTES,
        deps,
        config=config,
    )
