"""The public API's composition root (``uvicorn services.projection.public_app:create_app
--factory``, port 8005): its own process, separate from the internal read API on 8004.

Serves only released public figures (:mod:`.public_api`), ``/healthz`` (open, no figures) and
``/metrics`` (scraper/ops token). Nothing of the internal API is mounted here. It reads the
projection's read models and stores each release decision in ``public_releases``; a background
task decides the latest released day, week and month ahead of the first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import asyncpg
from fastapi import FastAPI, Request

from services.projection.bootstrap import ProjectionConfig
from services.projection.public_api import build_public_router
from services.projection.release_periods import ReleaseRule
from services.projection.releases import Releaser
from shared.bootstrap import close_pool
from shared.http import install_common, tokens_from_settings

log = logging.getLogger(__name__)
SERVICE = "public"
MAX_BODY_BYTES = 16 * 1024
#: How often the latest released periods are decided ahead of the first request, seconds.
PREPARE_EVERY_S = 300.0


def create_app(
    clock: Callable[[], datetime] | None = None, config: ProjectionConfig | None = None
) -> FastAPI:
    """``clock`` (tests): what "now" is for the release rule; default the wall clock.
    ``config``: default from the environment, built once here."""
    config = config or ProjectionConfig()
    settings, platform = config.settings, config.platform
    city = platform.city

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await platform.pool()
        app.state.releaser = Releaser(
            pool=pool,
            districts=[d.id for d in city.districts],
            rule=ReleaseRule(city.zone, settings.release_delay_days, settings.release_hour),
            threshold=settings.suppression_threshold,
            since=settings.public_since,
            clock=clock or (lambda: datetime.now(UTC)),
        )
        preparing = asyncio.create_task(_prepare(app.state.releaser), name="public-prepare")
        log.info("%s ready", SERVICE)
        try:
            yield
        finally:
            preparing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await preparing
            await close_pool(pool)

    app = FastAPI(
        title="dcr-platform public figures",
        description="Released figures of the drug consumption rooms per day, week and month, "
        "per district and for the city; small counts hidden so that they cannot be recovered "
        "(docs/public-figures.md).",
        version="1.0",
        lifespan=lifespan,
    )

    def get_releaser(request: Request) -> Releaser:
        releaser: Releaser = request.app.state.releaser
        return releaser

    async def health() -> dict[str, bool]:
        releaser: Releaser = app.state.releaser
        try:
            async with releaser.pool.acquire(timeout=2) as conn:
                return {"database": bool(await conn.fetchval("SELECT 1") == 1)}
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return {"database": False}

    app.include_router(build_public_router(get_releaser), prefix="/v1", tags=[SERVICE])
    install_common(app, SERVICE, health, MAX_BODY_BYTES, tokens=tokens_from_settings(platform.auth))
    return app


async def _prepare(releaser: Releaser) -> None:
    """In the background: decide each newly released day, week and month before anyone asks
    (a month's audit can take minutes). Errors are logged and retried at the next turn."""
    while True:
        try:
            await releaser.prepare_latest()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            log.warning("preparing the latest public periods failed: %r", exc)
        await asyncio.sleep(PREPARE_EVERY_S)
