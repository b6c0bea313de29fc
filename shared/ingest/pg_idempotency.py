"""PostgreSQL adapter of the IdempotencyStore port (table ``ingest_idempotency``)."""

from __future__ import annotations

import asyncio
import json
import logging

import asyncpg

from shared.bootstrap import CLOSE_WITHIN_S, close_within
from shared.ingest.ports import IdempotencyRecord, StoreUnavailable

log = logging.getLogger(__name__)

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


#: One round trip for a new request and for a replay: the insert, and when it clashed, the
#: earlier record (a differing fingerprint first: false < true) in the same statement.
_CLAIM = """
WITH new AS (
    INSERT INTO ingest_idempotency
        (scope, key, fingerprint, envelope, response, published, event_key)
    VALUES ($1, $2, $3, $4, $5::jsonb, false, $6)
    ON CONFLICT DO NOTHING
    RETURNING true AS fresh
)
SELECT fresh, NULL AS scope, NULL AS key, NULL AS fingerprint, NULL AS envelope,
       NULL AS response, NULL::boolean AS published, NULL AS event_key
  FROM new
UNION ALL
(SELECT false, scope, key, fingerprint, envelope, response::text, published, event_key
   FROM ingest_idempotency
  WHERE ((scope = $1 AND key = $2) OR event_key = $6) AND NOT EXISTS (SELECT FROM new)
  ORDER BY (fingerprint = $3), scope, key
  LIMIT 1)
"""
#: The earlier record alone: when the clash was committed after the statement above took its
#: snapshot (a concurrent request with the same key), its SELECT part cannot see it.
_EARLIER = """
SELECT false AS fresh, scope, key, fingerprint, envelope, response::text, published, event_key
  FROM ingest_idempotency
 WHERE (scope = $1 AND key = $2) OR event_key = $3
 ORDER BY (fingerprint = $4), scope, key
 LIMIT 1
"""


class PostgresIdempotencyStore:
    """Invariants: a new request costs one round trip here (the claim); the ``published`` marks
    are written after the request answered, several in one statement (:meth:`mark_published`).
    A mark not written (process killed, PostgreSQL away) leaves a record unpublished, which a
    retry publishes again under the same event id: consumers deduplicate by (source, id)."""

    def __init__(self, pool: asyncpg.Pool, remembered_marks: int = 100_000) -> None:
        self._pool = pool
        self._marks: list[tuple[str, str]] = []
        self._writer: asyncio.Task[None] | None = None
        #: The last marks made by this process, written or not (oldest first): a retry arriving
        #: before its mark is committed finds the record published all the same.
        self._marked: dict[tuple[str, str], None] = {}
        self._remembered = remembered_marks

    async def claim(self, record: IdempotencyRecord) -> tuple[IdempotencyRecord, bool]:
        try:
            return await self._claim(record)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def _claim(self, record: IdempotencyRecord) -> tuple[IdempotencyRecord, bool]:
        async with self._pool.acquire() as conn:
            # No conflict target: a clash on (scope, key) or on the unique event_key is skipped.
            row = await conn.fetchrow(
                _CLAIM,
                record.scope,
                record.key,
                record.fingerprint,
                record.envelope_json,
                json.dumps(record.response),
                record.event_key,
            )
            if row is None:
                row = await conn.fetchrow(
                    _EARLIER, record.scope, record.key, record.event_key, record.fingerprint
                )
        if row is None:  # pragma: no cover - rows are deleted only by retention, long after
            raise StoreUnavailable("claimed record vanished")
        if row["fresh"]:
            return record, True
        scope_key = (row["scope"], row["key"])
        return IdempotencyRecord(
            scope=scope_key[0],
            key=scope_key[1],
            fingerprint=row["fingerprint"],
            envelope_json=row["envelope"],
            response=json.loads(row["response"]),
            published=row["published"] or scope_key in self._marked,
            event_key=row["event_key"],
        ), False

    async def mark_published(self, scope: str, key: str) -> None:
        """Queue the mark; a background writer stores the queued marks in one UPDATE (the
        request does not wait for it). :meth:`close` writes what is still queued."""
        self._marks.append((scope, key))
        self._marked[(scope, key)] = None
        if len(self._marked) > self._remembered:
            del self._marked[next(iter(self._marked))]
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_marks())

    async def _write_marks(self) -> None:
        while self._marks:
            marks, self._marks = self._marks, []
            try:
                async with self._pool.acquire() as conn:
                    await conn.execute(
                        """UPDATE ingest_idempotency AS i SET published = true
                             FROM unnest($1::text[], $2::text[]) AS m(scope, key)
                            WHERE i.scope = m.scope AND i.key = m.key""",
                        [s for s, _ in marks],
                        [k for _, k in marks],
                    )
            except (*_UNAVAILABLE, asyncpg.PostgresError) as exc:
                # no key or scope in the log: only how many stay unpublished (retries republish)
                log.warning("%d published marks not written: %s", len(marks), type(exc).__name__)

    async def close(self, within_s: float = CLOSE_WITHIN_S) -> None:
        """Write the queued marks (call before closing the pool), for at most ``within_s``: a
        mark not written leaves its record unpublished, which a retry republishes."""
        writer = self._writer
        if writer is not None:
            await close_within(within_s, lambda: writer, "published marks' writer")

    async def ping(self) -> bool:
        try:
            async with self._pool.acquire(timeout=2) as conn:
                return bool(await conn.fetchval("SELECT 1") == 1)
        except (*_UNAVAILABLE, asyncpg.PostgresError):
            return False
