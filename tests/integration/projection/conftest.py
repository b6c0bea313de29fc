"""Per-test isolation for projection tests: their assertions are exact, so each test gets its own
database (migrated) and topic prefix on top of the session's ``test_env`` (same tokens)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support import TestEnv, isolated_env

pytestmark = pytest.mark.integration


@pytest.fixture
async def iso_env(test_env: TestEnv) -> AsyncIterator[TestEnv]:
    """A fresh database and topic prefix for one test: apps get its settings
    (``iso_env.projection()``...), child processes its environment (``iso_env.env()``)."""
    async with isolated_env(test_env, label="ptest") as env:
        yield env


@pytest.fixture
async def conn(iso_env: TestEnv) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test's own database (the store's functions run on it directly)."""
    c = await asyncpg.connect(iso_env.dsn)
    try:
        yield c
    finally:
        await c.close()
