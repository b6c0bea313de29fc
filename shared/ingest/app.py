"""Composition root shared by the ingest services: builds clients in the lifespan (none at import
time), wires the routes, health and metrics. A service supplies only its name and route specs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from fastapi import FastAPI, Request

from shared.asyncapi import install_asyncapi
from shared.auth import TokenRegistry
from shared.bootstrap import Platform, close_pool
from shared.http import install_common
from shared.ingest.api import IngestDeps, IngestRoute, build_router
from shared.ingest.batch import build_batch_router
from shared.ingest.kafka_publisher import connected_publisher
from shared.ingest.pg_idempotency import PostgresIdempotencyStore, keep_session
from shared.privacy import Pseudonymiser
from shared.settings import IngestSettings, SecuritySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestConfig:
    """An ingest process's settings, built once at its composition root (each from its
    ``DCR_*`` variables by default; tests pass their own)."""

    platform: Platform = field(default_factory=Platform)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    #: Refuses a missing or unsafe pseudonym secret in prod when built, before anything runs.
    security: SecuritySettings = field(default_factory=SecuritySettings)


@dataclass(frozen=True)
class Runtime:
    """What a service's background work runs on: the app's deps, the process's platform
    settings and its one PostgreSQL pool (no second pool per process)."""

    deps: IngestDeps
    platform: Platform
    pool: asyncpg.Pool


@asynccontextmanager
async def real_runtime(service: str, config: IngestConfig) -> AsyncIterator[Runtime]:
    """Connect to PostgreSQL and Kafka from ``config.platform``; close both on exit.

    Kafka being down does not stop the service from starting: the publisher keeps connecting in
    the background and the routes answer 503 (``/healthz``: ``kafka: false``) until it is up.
    """
    platform, security = config.platform, config.security
    async with AsyncExitStack() as stack:
        pool = await platform.pool(reset=keep_session)  # serves the idempotency store only
        stack.push_async_callback(close_pool, pool)
        publisher = await stack.enter_async_context(
            connected_publisher(platform.kafka, client_id=f"dcr-{service}")
        )
        idempotency = PostgresIdempotencyStore(pool)
        stack.push_async_callback(idempotency.close)  # its queued marks, before the pool closes
        deps = IngestDeps(
            service=service,
            city=platform.city,
            tokens=TokenRegistry.from_file(platform.auth.tokens_file),
            pseudonymiser=Pseudonymiser(security.secret_bytes(), security.pseudonym_key_id),
            publisher=publisher,
            idempotency=idempotency,
            settings=config.ingest,
        )
        yield Runtime(deps, platform, pool)


#: A service's own background work (e.g. a Kafka consumer), run for the app's lifetime.
Background = Callable[[Runtime], AbstractAsyncContextManager[Any]]


def create_ingest_app(
    service: str,
    title: str,
    description: str,
    routes: Sequence[IngestRoute[Any]],
    deps: IngestDeps | None = None,
    background: Background | None = None,
    platform: Platform | None = None,
    config: IngestConfig | None = None,
) -> FastAPI:
    """The FastAPI app of one ingest service. With ``deps`` (tests), no client is created, no
    background work runs and no settings are read; else the clients are built from ``config``
    (default: ``platform`` and the environment's ingest and security settings, built once here).

    ``background``, if given, is entered after the clients are built and exited before they
    close; if the object it yields has a ``health_checks()`` method, its checks join
    ``/healthz``.
    """

    real_config: IngestConfig | None = None
    if deps is None:
        real_config = config or IngestConfig(platform=platform or Platform())
        max_body_bytes = real_config.ingest.max_body_bytes
    else:
        max_body_bytes = deps.settings.max_body_bytes

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if real_config is None:
                app.state.deps = deps
            else:
                runtime = await stack.enter_async_context(real_runtime(service, real_config))
                app.state.deps = runtime.deps
                if background is not None:
                    app.state.background = await stack.enter_async_context(background(runtime))
            log.info("%s ready", service)
            yield

    app = FastAPI(title=title, description=description, version="1.0", lifespan=lifespan)

    def get_deps(request: Request) -> IngestDeps:
        d: IngestDeps = request.app.state.deps
        return d

    async def health() -> dict[str, bool]:
        d: IngestDeps = app.state.deps
        checks = {"kafka": await d.publisher.ping(), "database": await d.idempotency.ping()}
        extra = getattr(getattr(app.state, "background", None), "health_checks", None)
        if callable(extra):
            checks.update(extra())
        return checks

    app.include_router(build_router(routes, get_deps), prefix="/v1", tags=[service])
    app.include_router(build_batch_router(routes, get_deps), prefix="/v1", tags=[service])
    install_common(app, service, health, max_body_bytes, tokens=lambda r: get_deps(r).tokens)
    kafka = real_config.platform.kafka if real_config is not None else None
    install_asyncapi(app, title, description, kafka)
    return app
