"""PostgreSQL adapter of the IdempotencyStore port (table ``ingest_idempotency``)."""

from __future__ import annotations

import json

import asyncpg

from shared.ingest.ports import IdempotencyRecord, StoreUnavailable

_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
)


async def keep_session(conn: asyncpg.Connection) -> None:
    """Pool ``reset`` for connections used only by :class:`PostgresIdempotencyStore`: asyncpg
    still rolls back a transaction left open, but skips its session reset (``RESET ALL``,
    ``UNLISTEN *``, ... : one more round trip per release, i.e. two per request). Invariant:
    this store sets no session state, LISTENs to nothing and takes no session advisory lock."""


class PostgresIdempotencyStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, record: IdempotencyRecord) -> tuple[IdempotencyRecord, bool]:
        try:
            return await self._claim(record)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def _claim(self, record: IdempotencyRecord) -> tuple[IdempotencyRecord, bool]:
        async with self._pool.acquire() as conn:
            # No conflict target: a clash on (scope, key) or on the unique event_key is skipped.
            created = await conn.fetchval(
                """INSERT INTO ingest_idempotency
                       (scope, key, fingerprint, envelope, response, published, event_key)
                   VALUES ($1, $2, $3, $4, $5::jsonb, false, $6)
                   ON CONFLICT DO NOTHING
                   RETURNING true""",
                record.scope,
                record.key,
                record.fingerprint,
                record.envelope_json,
                json.dumps(record.response),
                record.event_key,
            )
            if created:
                return record, True
            rows = await conn.fetch(
                """SELECT scope, key, fingerprint, envelope, response, published, event_key
                   FROM ingest_idempotency
                   WHERE (scope = $1 AND key = $2) OR event_key = $3
                   ORDER BY (fingerprint = $4), scope, key""",
                record.scope,
                record.key,
                record.event_key,
                record.fingerprint,
            )
        # the clash is there: rows are deleted only by retention, long after any retry
        row = rows[0]  # a differing fingerprint sorts first (false < true)
        return IdempotencyRecord(
            scope=row["scope"],
            key=row["key"],
            fingerprint=row["fingerprint"],
            envelope_json=row["envelope"],
            response=json.loads(row["response"]),
            published=row["published"],
            event_key=row["event_key"],
        ), False

    async def mark_published(self, scope: str, key: str) -> None:
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(
                    "UPDATE ingest_idempotency SET published = true WHERE scope = $1 AND key = $2",
                    scope,
                    key,
                )
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def ping(self) -> bool:
        try:
            async with self._pool.acquire(timeout=2) as conn:
                return bool(await conn.fetchval("SELECT 1") == 1)
        except (*_UNAVAILABLE, asyncpg.PostgresError):
            return False
