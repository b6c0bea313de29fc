"""On the real PostgreSQL: a pool whose connection is still held (a request stuck mid-way, a
worker that did not release it) would keep asyncpg's ``pool.close()`` waiting for ever; the
bounded shutdown step forces it closed instead, and the held session ends on the server."""

from __future__ import annotations

import time

import pytest

from harness.poll import poll_until
from shared.bootstrap import close_within
from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration


async def test_a_pool_with_a_held_connection_is_terminated_after_the_bound(
    test_env: TestEnv,
) -> None:
    platform = test_env.platform()
    pool = await platform.pool(max_size=2)
    held = await pool.acquire()
    pid = held.get_server_pid()
    started = time.monotonic()
    closed = await close_within(0.5, pool.close, "PostgreSQL pool", pool.terminate)
    assert closed is False
    assert time.monotonic() - started < 10
    observer = await platform.connect()
    try:

        async def session_ended() -> bool:
            return not await observer.fetchval(
                "SELECT count(*) > 0 FROM pg_stat_activity WHERE pid = $1", pid
            )

        await poll_until(session_ended, timeout=10, what="the held session to end")
    finally:
        await observer.close()
    del held


async def test_a_pool_whose_connections_are_released_closes_normally(test_env: TestEnv) -> None:
    pool = await test_env.platform().pool(max_size=2)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
    assert await close_within(10, pool.close, "PostgreSQL pool", pool.terminate) is True
