"""Per-test isolation for projection tests: their assertions are exact, so each test gets its own
database (migrated) and topic prefix on top of the session's ``test_env`` (same tokens)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import TestEnv, isolated_env

pytestmark = pytest.mark.integration


@pytest.fixture
async def iso_env(test_env: TestEnv, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TestEnv]:
    """A fresh database and topic prefix for one test (env vars point at them meanwhile)."""
    async with isolated_env(test_env, monkeypatch, label="ptest") as env:
        yield env
