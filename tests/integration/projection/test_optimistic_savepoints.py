"""The optimistic inserts of a batch (claim, visit starts, stock movements) each run in a
savepoint that is left open when they succeed (``store._attempt``): on the real database, a
later attempt that fails undoes only itself, never an earlier one or what ran between them."""

from __future__ import annotations

import asyncpg
import pytest
from prometheus_client import CollectorRegistry, Counter

from services.projection import store

pytestmark = pytest.mark.integration


@pytest.fixture
async def table(conn: asyncpg.Connection) -> asyncpg.Connection:
    """The test's connection, with a keyed table holding key 1 (stored before the batch)."""
    await conn.execute("CREATE TEMP TABLE t (k int PRIMARY KEY)")
    await conn.execute("INSERT INTO t VALUES (1)")
    return conn


async def _insert(conn: asyncpg.Connection, *keys: int) -> str:
    """A plain insert of ``keys`` (no ``ON CONFLICT``): its status."""
    status: str = await conn.execute("INSERT INTO t SELECT unnest($1::int[])", list(keys))
    return status


async def _keys(conn: asyncpg.Connection) -> list[int]:
    return [r["k"] for r in await conn.fetch("SELECT k FROM t ORDER BY k")]


async def test_a_failed_attempt_undoes_only_itself(table: asyncpg.Connection) -> None:
    conn = table
    registry = CollectorRegistry()
    fallbacks = Counter("attempts_failed", "test", registry=registry)

    async with conn.transaction():
        first = await store._attempt(conn, fallbacks, lambda: _insert(conn, 10, 11))
        await conn.execute("INSERT INTO t VALUES (20)")  # between two attempts
        second = await store._attempt(conn, fallbacks, lambda: _insert(conn, 30, 1))  # meets key 1
        await conn.execute("INSERT INTO t VALUES (30) ON CONFLICT DO NOTHING")  # its fallback
        third = await store._attempt(conn, fallbacks, lambda: _insert(conn, 40))

    assert (first, second, third) == ("INSERT 0 2", None, "INSERT 0 1")
    assert registry.get_sample_value("attempts_failed_total") == 1
    assert await _keys(conn) == [1, 10, 11, 20, 30, 40]


async def test_an_attempt_outside_a_transaction_is_its_own(table: asyncpg.Connection) -> None:
    conn = table
    fallbacks = Counter("attempts_failed", "test", registry=CollectorRegistry())

    assert await store._attempt(conn, fallbacks, lambda: _insert(conn, 2, 1)) is None
    assert await store._attempt(conn, fallbacks, lambda: _insert(conn, 3)) == "INSERT 0 1"

    assert not conn.is_in_transaction()
    assert await _keys(conn) == [1, 3]
