"""Composition root shared by the ingest services: builds clients in the lifespan (none at import
time), wires the routes, health and metrics. A service supplies only its name and route specs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request

from shared.asyncapi import install_asyncapi
from shared.auth import TokenRegistry
from shared.city import load_city
from shared.http import install_common
from shared.ingest.api import IngestDeps, IngestRoute, build_router
from shared.ingest.batch import build_batch_router
from shared.ingest.kafka_publisher import connected_publisher
from shared.ingest.pg_idempotency import PostgresIdempotencyStore, keep_session
from shared.privacy import Pseudonymiser
from shared.settings import (
    AuthSettings,
    CitySettings,
    DatabaseSettings,
    IngestSettings,
    KafkaSettings,
    SecuritySettings,
)

log = logging.getLogger(__name__)


@asynccontextmanager
async def real_deps(service: str) -> AsyncIterator[IngestDeps]:
    """Connect to PostgreSQL and Kafka from settings; close both on exit.

    Kafka being down does not stop the service from starting: the publisher keeps connecting in
    the background and the routes answer 503 (``/healthz``: ``kafka: false``) until it is up.
    """
    security = SecuritySettings()
    kafka = KafkaSettings()
    db = DatabaseSettings()
    async with AsyncExitStack() as stack:
        pool = await asyncpg.create_pool(
            db.dsn.get_secret_value(),
            min_size=db.pool_min,
            max_size=db.pool_max,
            reset=keep_session,  # the pool serves the idempotency store only
        )
        stack.push_async_callback(pool.close)
        publisher = await stack.enter_async_context(
            connected_publisher(kafka, client_id=f"dcr-{service}")
        )
        yield IngestDeps(
            service=service,
            city=load_city(CitySettings().file),
            tokens=TokenRegistry.from_file(AuthSettings().tokens_file),
            pseudonymiser=Pseudonymiser(security.secret_bytes(), security.pseudonym_key_id),
            publisher=publisher,
            idempotency=PostgresIdempotencyStore(pool),
            settings=IngestSettings(),
        )


#: A service's own background work (e.g. a Kafka consumer), run for the app's lifetime.
Background = Callable[[IngestDeps], AbstractAsyncContextManager[Any]]


def create_ingest_app(
    service: str,
    title: str,
    description: str,
    routes: Sequence[IngestRoute[Any]],
    deps: IngestDeps | None = None,
    background: Background | None = None,
) -> FastAPI:
    """The FastAPI app of one ingest service. With ``deps`` (tests), no client is created.

    ``background``, if given, is entered after the deps are built and exited before they close;
    if the object it yields has a ``health_checks()`` method, its checks join ``/healthz``.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            built = (
                deps if deps is not None else await stack.enter_async_context(real_deps(service))
            )
            app.state.deps = built
            if background is not None:
                app.state.background = await stack.enter_async_context(background(built))
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
    install_common(
        app, service, health, IngestSettings().max_body_bytes, tokens=lambda r: get_deps(r).tokens
    )
    install_asyncapi(app, title, description)
    return app
