"""``POST /v1/batch``: many reports in one request (NDJSON), one result per line.

For a room's own system and for the front desk's offline queue. Each request line is
``{"route": "/visits", "idempotency_key": "...", "body": {...}}``; each answer line is
``{"line": n, "status": 202, "body": {...}}`` in the same order (``n`` counts from 1).

Invariants:
- the bearer token is checked once for the whole batch (401 for the request, no line processed);
- every line goes through exactly the single-event path of :mod:`shared.ingest.api` (authorise
  for its facility, validate, pseudonymise, idempotent publish): a line's result is what the same
  body would have got from its own route, and replaying a batch with the same keys publishes
  nothing new;
- lines are processed in order; once a line fails with 503 (Kafka or the idempotency store
  unavailable) the remaining lines are not attempted and answer 503 too, so a client that resends
  from the first non-final line keeps the original order;
- a malformed line (not JSON, unknown route, invalid body) gets its own 4xx naming the field and
  does not stop the lines after it.
"""

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.auth import Principal
from shared.http import field_errors
from shared.ingest.api import (
    IdempotencyKey,
    IngestDeps,
    IngestRoute,
    _endpoint,
    bearer_authenticator,
)

#: Most lines one batch may hold (the body size limit of the service applies as well).
MAX_LINES = 500
NDJSON = "application/x-ndjson"


class BatchLine(BaseModel):
    """One request line."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    route: Annotated[str, Field(min_length=1, max_length=100, examples=["/visits"])]
    idempotency_key: IdempotencyKey | None = None
    body: dict[str, Any]


def _result(line: int, status: int, body: Any) -> dict[str, Any]:
    return {"line": line, "status": status, "body": body}


def build_batch_router(
    routes: Sequence[IngestRoute[Any]],
    get_deps: Callable[[Request], IngestDeps],
) -> APIRouter:
    """An APIRouter with ``POST /batch`` over ``routes`` (the service's own routes only)."""
    router = APIRouter()
    authenticate = bearer_authenticator(get_deps)

    async def no_second_auth() -> Principal:  # pragma: no cover - never called directly
        raise AssertionError("batch lines are authenticated once, by the batch")

    handlers = {r.path: (r, _endpoint(r, get_deps, no_second_auth)) for r in routes}

    @router.post(
        "/batch",
        summary="Many reports at once (NDJSON), one result per line",
        description=__doc__ or "",
        response_class=Response,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {NDJSON: {"schema": BatchLine.model_json_schema()}},
            }
        },
        responses={
            200: {"description": "one JSON result per request line", "content": {NDJSON: {}}},
            401: {"description": "missing or invalid token"},
            413: {"description": "body too large"},
            422: {"description": "no lines, or too many"},
        },
    )
    async def batch(
        request: Request, principal: Annotated[Principal, Depends(authenticate)]
    ) -> Response:
        raw = (await request.body()).decode("utf-8", errors="replace").splitlines()
        lines = [(n, text) for n, text in enumerate(raw, start=1) if text.strip()]
        if not lines or len(lines) > MAX_LINES:
            raise HTTPException(422, f"a batch holds 1 to {MAX_LINES} non-empty lines")
        results: list[dict[str, Any]] = []
        halted = False
        for n, text in lines:
            if halted:
                results.append(_result(n, 503, "not attempted: an earlier line failed with 503"))
                continue
            result = await _one(request, principal, handlers, n, text)
            halted = result["status"] == 503
            results.append(result)
        body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in results)
        return Response(body, media_type=NDJSON)

    return router


async def _one(
    request: Request,
    principal: Principal,
    handlers: dict[str, tuple[IngestRoute[Any], Callable[..., Any]]],
    n: int,
    text: str,
) -> dict[str, Any]:
    """The result of one line through its route's single-event handler."""
    try:
        line = BatchLine.model_validate_json(text)
    except ValidationError as exc:
        return _result(n, 422, _errors(exc, "line"))
    found = handlers.get(line.route)
    if found is None:
        return _result(n, 404, f"unknown route {line.route!r}")
    route, handler = found
    try:
        body = route.request_model.model_validate(line.body)
    except ValidationError as exc:
        return _result(n, 422, _errors(exc, "body"))
    try:
        response = await handler(request, principal, body, line.idempotency_key)
    except HTTPException as exc:
        return _result(n, exc.status_code, exc.detail)
    return _result(n, response.status_code, json.loads(bytes(response.body)))


def _errors(exc: ValidationError, where: str) -> list[dict[str, Any]]:
    """Field errors located under ``where``, without the submitted values (codes stay out)."""
    located = [{**e, "loc": (where, *e.get("loc", ()))} for e in exc.errors(include_input=False)]
    return field_errors(RequestValidationError(located))
