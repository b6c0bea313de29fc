"""The optimistic inserts of a batch (claim, visit starts, stock movements) each run in a
savepoint that is left open when they succeed (``store._attempt``): on the real database, a
later attempt that fails undoes only itself, never an earlier one or what ran between them."""

from __future__ import annotations

import asyncpg
import pytest
from prometheus_client import CollectorRegistry, Counter

from services.projection import store

pytestmark = pytest.mark.integration


async def test_a_failed_attempt_undoes_only_itself(conn: asyncpg.Connection) -> None:
    registry = CollectorRegistry()
    fallbacks = Counter("attempts_failed", "test", registry=registry)
    await conn.execute("CREATE TEMP TABLE t (k int PRIMARY KEY)")
    await conn.execute("INSERT INTO t VALUES (1)")  # stored before the batch

    async def insert(*keys: int) -> str:
        status: str = await conn.execute("INSERT INTO t SELECT unnest($1::int[])", list(keys))
        return status

    async with conn.transaction():
        first = await store._attempt(conn, fallbacks, lambda: insert(10, 11))
        await conn.execute("INSERT INTO t VALUES (20)")  # between two attempts
        second = await store._attempt(conn, fallbacks, lambda: insert(30, 1))  # meets key 1
        await conn.execute("INSERT INTO t VALUES (30) ON CONFLICT DO NOTHING")  # its fallback
        third = await store._attempt(conn, fallbacks, lambda: insert(40))

    assert (first, second, third) == ("INSERT 0 2", None, "INSERT 0 1")
    assert registry.get_sample_value("attempts_failed_total") == 1
    assert [r["k"] for r in await conn.fetch("SELECT k FROM t ORDER BY k")] == [
        1,
        10,
        11,
        20,
        30,
        40,
    ]


async def test_an_attempt_outside_a_transaction_is_its_own(conn: asyncpg.Connection) -> None:
    fallbacks = Counter("attempts_failed", "test", registry=CollectorRegistry())
    await conn.execute("CREATE TEMP TABLE t (k int PRIMARY KEY)")
    await conn.execute("INSERT INTO t VALUES (1)")

    async def insert(*keys: int) -> str:
        status: str = await conn.execute("INSERT INTO t SELECT unnest($1::int[])", list(keys))
        return status

    assert await store._attempt(conn, fallbacks, lambda: insert(2, 1)) is None
    assert await store._attempt(conn, fallbacks, lambda: insert(3)) == "INSERT 0 1"

    assert not conn.is_in_transaction()
    assert [r["k"] for r in await conn.fetch("SELECT k FROM t ORDER BY k")] == [1, 3]
