"""The projection's composition root (``uvicorn services.projection.app:create_app --factory``).

The lifespan builds the clients (none at import time): a PostgreSQL pool for the read API and
the batches, and the :class:`~.runner.ProjectionRunner` (Kafka consumer + dead-letter producer)
as a background task, and the retention job (:mod:`.retention`, every
``DCR_RETENTION_INTERVAL_S``). ``/healthz`` is 200 only when the database answers, Kafka
answers and the consumer is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from fastapi import FastAPI, Request

from services.projection import access
from services.projection.api import ReadContext, build_router
from services.projection.bootstrap import ProjectionConfig
from services.projection.domain_metrics import install_domain_metrics
from services.projection.gc_policy import tune_gc
from services.projection.period_api import build_period_router
from services.projection.read_port import PgReadModels
from services.projection.report_api import build_report_router
from services.projection.retention import retention_loop
from services.projection.runner import ProjectionRunner
from shared.auth import TokenRegistry
from shared.bootstrap import close_pool
from shared.http import install_common
from shared.http_auth import require_kinds

log = logging.getLogger(__name__)
SERVICE = "projection"
#: The read API takes no bodies; anything larger than this is refused.
MAX_BODY_BYTES = 16 * 1024


def create_app(config: ProjectionConfig | None = None) -> FastAPI:
    """The projection's app, configured by ``config`` (default: from the environment, built
    once here); its lifespan builds the pool, the consumer and the retention job from it."""
    config = config or ProjectionConfig()
    settings, platform = config.settings, config.platform
    city = platform.city

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.tokens = TokenRegistry.from_file(platform.auth.tokens_file)
        pool = await platform.pool()
        domain_metrics = install_domain_metrics(pool, city, settings)
        runner = ProjectionRunner(
            pool=pool, city=city, settings=settings, kafka=platform.kafka, dsn=platform.dsn
        )
        tune_gc()
        task = asyncio.create_task(runner.run(), name="projection-consumer")
        task.add_done_callback(_report_crash)
        retention_stop = asyncio.Event()
        retention = asyncio.create_task(
            retention_loop(
                pool,
                city.zone,
                retention_stop,
                config.retention,
                config.horizon,
                settings.max_visit,
            ),
            name="projection-retention",
        )
        app.state.runner = runner
        app.state.read = ReadContext(
            pool=pool,
            reads=PgReadModels(pool),
            city=city,
            settings=settings,
            freshness=runner.freshness,
        )
        log.info("%s ready", SERVICE)
        try:
            yield
        finally:
            retention_stop.set()
            await retention
            runner.stop()
            try:
                await asyncio.wait_for(task, timeout=30)
            except TimeoutError:
                log.warning("consumer did not stop within 30 s; cancelled")
            await domain_metrics.aclose()
            await close_pool(pool)

    app = FastAPI(
        title="dcr-platform projection",
        description="Read models of the drug consumption rooms: city and district "
        "figures per day, facilities live and stock, drug alerts.",
        version="1.0",
        lifespan=lifespan,
    )

    def get_ctx(request: Request) -> ReadContext:
        ctx: ReadContext = request.app.state.read
        return ctx

    async def health() -> dict[str, bool]:
        ctx: ReadContext = app.state.read
        runner: ProjectionRunner = app.state.runner
        return {
            "database": await _db_ok(ctx.pool),
            "kafka": await runner.kafka_ok(),
            "consumer": runner.running,
        }

    def get_tokens(request: Request) -> TokenRegistry:
        tokens: TokenRegistry = request.app.state.tokens
        return tokens

    # Reports, period totals, per-room days: each route narrows the role (services.projection.
    # access.scope_allowed): analyst city/districts over closed days, facility its own room.
    period_reader = require_kinds(SERVICE, get_tokens, access.PERIODS)
    app.include_router(build_router(get_ctx, get_tokens, SERVICE), prefix="/v1", tags=[SERVICE])
    app.include_router(
        build_report_router(get_ctx, period_reader, SERVICE), prefix="/v1", tags=[SERVICE]
    )
    app.include_router(
        build_period_router(get_ctx, period_reader, SERVICE), prefix="/v1", tags=[SERVICE]
    )
    install_common(app, SERVICE, health, MAX_BODY_BYTES, tokens=get_tokens)
    return app


async def _db_ok(pool: asyncpg.Pool) -> bool:
    try:
        async with pool.acquire(timeout=2) as conn:
            return bool(await conn.fetchval("SELECT 1") == 1)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("projection consumer stopped: %r", task.exception())
