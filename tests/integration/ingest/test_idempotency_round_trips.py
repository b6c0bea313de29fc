"""The PostgreSQL idempotency store on the real database: a new request's claim is one
statement, so is a replay's; the ``published`` mark is written after the request by a
background writer (several marks in one UPDATE), and a retry arriving before that write is
committed still finds the record published (nothing is published twice by one process); the
queued marks are written when the store closes.

Statements are counted with asyncpg's query logger (one statement = one round trip once the
connection has the statement prepared; the first use of a statement also prepares it).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import asyncpg
import pytest

from shared.ingest.pg_idempotency import PostgresIdempotencyStore, keep_session
from shared.ingest.ports import IdempotencyRecord

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration


class Statements:
    """Every statement the pool's connections run (asyncpg's query logger)."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def __call__(self, logged: asyncpg.connection.LoggedQuery) -> None:
        self.queries.append(logged.query)

    def since(self, n: int) -> list[str]:
        return self.queries[n:]


@pytest.fixture
async def counted(test_env: TestEnv) -> AsyncIterator[tuple[asyncpg.Pool, Statements]]:
    statements = Statements()

    async def log_queries(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(statements)

    pool = await asyncpg.create_pool(
        test_env.dsn, min_size=2, max_size=4, init=log_queries, reset=keep_session
    )
    try:
        yield pool, statements
    finally:
        await pool.close()


def _record(key: str, fingerprint: str = "f1", event_key: str | None = None) -> IdempotencyRecord:
    return IdempotencyRecord(
        scope="halmtorv\x1fintake/v1/visits/started",
        key=key,
        fingerprint=fingerprint,
        envelope_json=json.dumps({"headers": {}, "value": "{}"}),
        response={"event_id": key},
        event_key=event_key,
    )


async def _published(pool: asyncpg.Pool, key: str) -> bool | None:
    async with pool.acquire() as conn:
        value: bool | None = await conn.fetchval(
            "SELECT published FROM ingest_idempotency WHERE key = $1", key
        )
        return value


async def test_a_new_request_and_a_replay_each_claim_in_one_statement(
    counted: tuple[asyncpg.Pool, Statements],
) -> None:
    pool, statements = counted
    store = PostgresIdempotencyStore(pool)
    key = f"k-{uuid.uuid4()}"
    n = len(statements.queries)
    stored, fresh = await store.claim(_record(key))
    assert fresh and stored == _record(key)
    assert len(statements.since(n)) == 1, statements.since(n)

    n = len(statements.queries)
    earlier, fresh = await store.claim(_record(key))
    assert not fresh and earlier.response == {"event_id": key} and not earlier.published
    assert len(statements.since(n)) == 1, statements.since(n)

    n = len(statements.queries)
    other, fresh = await store.claim(_record(key, fingerprint="f2"))
    assert not fresh and other.fingerprint == "f1"  # the caller answers 409
    assert len(statements.since(n)) == 1
    await store.close()


async def test_an_event_id_used_under_another_key_is_found_in_the_same_statement(
    counted: tuple[asyncpg.Pool, Statements],
) -> None:
    pool, statements = counted
    store = PostgresIdempotencyStore(pool)
    event_key = f"halmtorv\x1f{uuid.uuid4()}"
    await store.claim(_record(f"a-{uuid.uuid4()}", event_key=event_key))
    n = len(statements.queries)
    earlier, fresh = await store.claim(
        _record(f"b-{uuid.uuid4()}", fingerprint="other", event_key=event_key)
    )
    assert not fresh and earlier.event_key == event_key and earlier.fingerprint == "f1"
    assert len(statements.since(n)) == 1
    await store.close()


async def test_published_marks_are_written_after_the_request_and_count_at_once(
    counted: tuple[asyncpg.Pool, Statements],
) -> None:
    pool, statements = counted
    store = PostgresIdempotencyStore(pool)
    keys = [f"m-{uuid.uuid4()}" for _ in range(20)]
    for key in keys:
        await store.claim(_record(key))
    n = len(statements.queries)
    for key in keys:  # the requests do not wait: nothing has run yet
        await store.mark_published(_record(key).scope, key)
    assert statements.since(n) == []
    # a retry before the mark is committed: published all the same (no second publish)
    earlier, fresh = await store.claim(_record(keys[0]))
    assert not fresh and earlier.published
    await store.close()  # writes what is still queued
    updates = [q for q in statements.since(n) if q.lstrip().startswith("UPDATE")]
    assert 1 <= len(updates) <= 2, updates  # the first mark's write, then all the rest
    assert [await _published(pool, key) for key in keys] == [True] * len(keys)
    # another process (a restarted service) reads the committed marks
    fresh_store = PostgresIdempotencyStore(pool)
    again, fresh = await fresh_store.claim(_record(keys[-1]))
    assert not fresh and again.published


async def test_concurrent_requests_with_one_key_claim_it_once(
    counted: tuple[asyncpg.Pool, Statements],
) -> None:
    pool, _ = counted
    store = PostgresIdempotencyStore(pool)
    key = f"c-{uuid.uuid4()}"
    results = await asyncio.gather(*(store.claim(_record(key)) for _ in range(8)))
    assert sum(fresh for _, fresh in results) == 1
    assert all(r.response == {"event_id": key} for r, _ in results)
    await store.close()
