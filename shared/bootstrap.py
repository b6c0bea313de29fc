"""One bootstrap per process: the platform settings every process type needs, built once at its
entry point (a composition root's ``create_app``, a command's ``main``) and passed down.

Invariants: the database DSN is read here and nowhere else (:attr:`Platform.dsn`); pools and
connections are opened from a :class:`Platform`, with its pool size; nothing below an entry point
builds a ``*Settings()`` of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import asyncpg

from shared.city import City, load_city
from shared.settings import AuthSettings, CitySettings, DatabaseSettings, KafkaSettings

log = logging.getLogger(__name__)

#: How long a process stopping waits for one client to close before it forces or abandons it.
CLOSE_WITHIN_S = 10.0


@dataclass(frozen=True)
class Platform:
    """Where the broker, the database, the city and the tokens are (``DCR_KAFKA_*``,
    ``DCR_DB_*``, ``DCR_CITY_*``, ``DCR_AUTH_*``)."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    db: DatabaseSettings = field(default_factory=DatabaseSettings)
    city_settings: CitySettings = field(default_factory=CitySettings)
    auth: AuthSettings = field(default_factory=AuthSettings)

    @property
    def dsn(self) -> str:
        """The database's DSN (the one place it is read)."""
        return self.db.dsn.get_secret_value()

    @cached_property
    def city(self) -> City:
        """The city (districts, facilities, time zone), loaded once."""
        return load_city(self.city_settings.file)

    async def pool(
        self,
        max_size: int | None = None,
        *,
        reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> asyncpg.Pool:
        """A connection pool of ``DCR_DB_POOL_MIN``..``max_size`` (default ``DCR_DB_POOL_MAX``).
        ``reset``: what a connection's release runs instead of asyncpg's session reset (e.g.
        nothing, for a pool whose users set no session state: one round trip less)."""
        size = max_size or self.db.pool_max
        return await asyncpg.create_pool(
            self.dsn, min_size=min(self.db.pool_min, size), max_size=size, reset=reset
        )

    async def connect(self) -> asyncpg.Connection:
        """One connection (commands, advisory-lock sessions)."""
        return await asyncpg.connect(self.dsn)


async def close_within(
    seconds: float,
    close: Callable[[], Awaitable[object]],
    what: str,
    force: Callable[[], object] | None = None,
) -> bool:
    """Run one shutdown step, ``close()``, for at most ``seconds``; True if it finished.

    Invariant: a process stopping never hangs on a client that does not answer (aiokafka's
    ``producer.stop()`` waits for undelivered batches without a deadline; asyncpg's
    ``pool.close()`` waits for every connection to be released). An overrun is cancelled,
    logged, and ``force`` (e.g. ``pool.terminate``) runs if given.
    """
    try:
        async with asyncio.timeout(seconds):
            await close()
    except TimeoutError:
        log.warning(
            "%s did not close within %g s; %s", what, seconds, "forced" if force else "abandoned"
        )
        if force is not None:
            force()
        return False
    return True


async def close_pool(pool: asyncpg.Pool) -> bool:
    """Close ``pool`` (its connections released first), terminating it after
    :data:`CLOSE_WITHIN_S` if a connection is still held; True if it closed gracefully."""
    return await close_within(CLOSE_WITHIN_S, pool.close, "PostgreSQL pool", pool.terminate)


@asynccontextmanager
async def running(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``work`` as a background task while the block runs; cancel it and wait for it on
    exit, for at most :data:`CLOSE_WITHIN_S` (a worker of a composition root: it never outlives
    the app, and a worker slow to stop does not hold the app's exit)."""
    task = asyncio.create_task(work, name=name)

    async def stopped() -> None:
        await asyncio.wait({task})  # its CancelledError stays in the task

    try:
        yield task
    finally:
        task.cancel()
        if await close_within(CLOSE_WITHIN_S, stopped, f"background task {name}") and not (
            task.cancelled()
        ):
            task.result()  # the worker's own failure, if it had one, is raised here
