"""Exactly one active drug alert evaluator: a PostgreSQL session-level advisory lock.

The rule needs every overdose of a district, and a district's facilities may sit on different
partitions, so splitting the incidents topic between instances would miss clusters. Every
incident instance runs an alert worker; only the one holding the lock consumes (it assigns itself
**every** partition), the others wait as standbys and retry the lock every ``retry_s``.

The lock lives on its own connection: it is released by PostgreSQL the moment that connection
ends, including when the leader's process is killed (the kernel closes its socket), so a standby
takes over within ``retry_s``. The leader checks its connection on every poll and stops consuming
as soon as it is lost (another instance may then hold the lock). Even in the window where two
instances believe they lead, nothing is doubled: overdoses are unique by (source, id) and alerts
by episode in PostgreSQL (see :mod:`services.incident.alert_store`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable

import asyncpg


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name`` (e.g. the consumer group)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Leadership:
    """Holds a PostgreSQL advisory lock on a dedicated connection while a block runs."""

    def __init__(self, dsn: str, key: int) -> None:
        self._dsn = dsn
        self._key = key
        self._conn: asyncpg.Connection | None = None

    @contextlib.asynccontextmanager
    async def lead(
        self, retry_s: float, waiting: Callable[[], None] = lambda: None
    ) -> AsyncIterator[None]:
        """Wait until this instance holds the lock (calling ``waiting`` after each try), then
        run the block; the lock is released when the block ends."""
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key):
                waiting()
                await asyncio.sleep(retry_s)
            self._conn = conn
            yield
        finally:
            self._conn = None
            with contextlib.suppress(Exception):
                await conn.close()  # closing the session releases the lock

    async def confirm(self) -> None:
        """Raise unless the lock's connection is still alive (the lock is then still ours)."""
        if self._conn is None or self._conn.is_closed():
            raise ConnectionError("advisory lock connection lost")
        await self._conn.fetchval("SELECT 1")
