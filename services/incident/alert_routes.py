"""``POST /v1/alerts/{alert_id}/ack``: an authenticated ops user takes charge of a drug alert.

Only principals of kind ``ops`` (shared.auth) may acknowledge (401 without a valid bearer token,
403 for facility or sanitation tokens). The first acknowledgement is stored with the alert and its
``dk.dcr.alert.acknowledged`` event in one transaction, then published: 202 once Kafka
acknowledged it, 503 + Retry-After if it could not be published (the event stays in the outbox,
a retry of the request publishes it). Later acknowledgements change nothing and answer 200 with
the first one's time and user; an unknown id answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shared.auth import Principal, PrincipalKind
from shared.http_auth import bearer_principal
from shared.ingest.api import IngestDeps
from shared.ingest.ports import PublishError
from shared.metrics import AUTH_FAILURES

AlertId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The alert's id (hex).")]


def _ops(deps: IngestDeps, authorization: str | None) -> Principal:
    principal = bearer_principal(deps.tokens, deps.service, authorization)
    if principal.kind is not PrincipalKind.OPS:
        AUTH_FAILURES.labels(deps.service, "forbidden").inc()
        raise HTTPException(403, "only ops tokens may acknowledge drug alerts")
    return principal


class Acknowledged(BaseModel):
    """The acknowledgement of a drug alert (the first one when it was acknowledged before)."""

    alert_id: str = Field(description="The alert acknowledged")
    acknowledged_at: str = Field(
        description="When (ISO 8601 with offset)", examples=["2026-11-27T10:00:00+00:00"]
    )
    acknowledged_by: str | None = Field(description="The ops account", examples=["ops-oncall"])


def alert_router() -> APIRouter:
    router = APIRouter()

    @router.post(
        "/alerts/{alert_id}/ack",
        summary="Acknowledge a drug alert (ops)",
        status_code=202,
        response_model=Acknowledged,
        responses={
            200: {
                "model": Acknowledged,
                "description": "already acknowledged (the first acknowledgement is returned)",
            },
            401: {"description": "missing or invalid token"},
            403: {"description": "not an ops token"},
            404: {"description": "no such alert"},
            503: {"description": "the alert worker or Kafka is unavailable; retry"},
        },
    )
    async def acknowledge(
        alert_id: AlertId,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        deps: IngestDeps = request.app.state.deps
        principal = _ops(deps, authorization)
        workers = getattr(request.app.state, "background", None)
        if workers is None:
            raise HTTPException(503, "the drug alert worker is not running")
        outcome, at, by = await workers.alerts.store.acknowledge(
            UUID(alert_id), principal.id, deps.clock()
        )
        if outcome == "missing":
            raise HTTPException(404, f"no drug alert {alert_id}")
        try:
            await workers.alerts.flush()
        except PublishError:
            raise HTTPException(
                503,
                "acknowledgement stored but not yet published; retry",
                headers={"Retry-After": str(deps.settings.retry_after_s)},
            ) from None
        assert at is not None
        body: dict[str, Any] = {
            "alert_id": alert_id,
            "acknowledged_at": at.isoformat(),
            "acknowledged_by": by,
        }
        return JSONResponse(status_code=202 if outcome == "new" else 200, content=body)

    return router
