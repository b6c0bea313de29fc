"""HTTP plumbing every service uses: RED metrics, body size limit, 422 shape, /healthz, /metrics.

``/metrics`` needs a bearer token of kind ``ops`` or ``metrics`` (the Prometheus scraper's);
``/healthz`` stays open for liveness probes and tells only whether the dependencies answer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import TokenRegistry
from shared.http_auth import METRICS_READERS, require_kinds
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS
from shared.settings import AuthSettings

HealthCheck = Callable[[], Awaitable[dict[str, bool]]]


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Validation errors without the submitted values (they may hold a client's code)."""
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]


TokensOf = Callable[[Request], TokenRegistry]


def tokens_from_settings(auth: AuthSettings | None = None) -> TokensOf:
    """The registry of ``auth``'s tokens file (default ``DCR_AUTH_TOKENS_FILE``), read at the
    first request that needs it (so an app can be created, e.g. for its OpenAPI schema, without
    the file)."""
    loaded: list[TokenRegistry] = []

    def get(_: Request) -> TokenRegistry:
        if not loaded:
            loaded.append(TokenRegistry.from_file((auth or AuthSettings()).tokens_file))
        return loaded[0]

    return get


class Health(BaseModel):
    """The ``/healthz`` answer (200 when every check passes, else 503 with the same shape)."""

    status: str = Field(description="ok or unavailable", examples=["ok"])
    checks: dict[str, bool] = Field(
        description="Each dependency the service needs and whether it answers",
        examples=[{"database": True, "kafka": True}],
    )


def install_common(
    app: FastAPI,
    service: str,
    health: HealthCheck,
    max_body_bytes: int,
    tokens: TokensOf | None = None,
) -> None:
    """Add the error handler, metrics middleware, body limit, /healthz and /metrics to ``app``.

    ``tokens`` gives the registry ``/metrics`` authenticates against (default: the tokens file).
    """
    metrics_reader = require_kinds(service, tokens or tokens_from_settings(), METRICS_READERS)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": field_errors(exc)})

    @app.get(
        "/healthz",
        tags=["ops"],
        summary="Ready only when broker and database work",
        response_model=Health,
        responses={503: {"model": Health, "description": "a dependency does not answer"}},
    )
    async def healthz() -> JSONResponse:
        checks = await health()
        ok = all(checks.values())
        return JSONResponse(
            status_code=200 if ok else 503,
            content={"status": "ok" if ok else "unavailable", "checks": checks},
        )

    @app.get(
        "/metrics",
        tags=["ops"],
        include_in_schema=False,
        dependencies=[Depends(metrics_reader)],
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(MetricsMiddleware, service=service)


def _route_template(scope: Scope) -> str:
    """The matched route's path template (a bounded label), or 'unmatched'.

    The router records the matched route in the (shared, mutable) scope while handling it.
    """
    route = scope.get("route")
    return str(getattr(route, "path_format", None) or getattr(route, "path", "unmatched"))


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method = scope["method"]
            route = _route_template(scope)
            HTTP_LATENCY.labels(self.service, route, method).observe(time.perf_counter() - start)
            HTTP_REQUESTS.labels(self.service, route, method, str(status)).inc()


class BodyLimitMiddleware:
    """Refuse bodies larger than ``max_bytes`` with 413, whether or not Content-Length is sent.

    A declared Content-Length over the limit is refused before reading. Otherwise the body is
    read here first (it is at most ``max_bytes``) and refused as soon as it passes the limit, then
    handed to the app in one piece: raising while the app reads it would not do, as FastAPI turns
    any error while reading a body into a 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await _too_large(self.max_bytes)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        pending: Message | None = {
            "type": "http.request",
            "body": b"".join(chunks),
            "more_body": False,
        }

        async def replay() -> Message:
            nonlocal pending
            if pending is not None:
                message, pending = pending, None
                return message
            return await receive()  # after the body: disconnect notifications

        await self.app(scope, replay, send)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        status_code=413, content={"detail": f"request body larger than {limit} bytes"}
    )
