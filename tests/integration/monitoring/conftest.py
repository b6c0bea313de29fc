"""Fixtures of the monitoring integration tests: an isolated database and topic prefix per test
module on top of the session's ``test_env`` (same broker, tokens and secrets), so that the
traffic these tests send (overdoses, drug alerts, dead letters) never reaches other tests' topics
and their assertions can be exact."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import TestEnv, isolated_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def iso_env(test_env: TestEnv) -> AsyncIterator[TestEnv]:
    """A fresh migrated database and topic prefix for one test module."""
    async with isolated_env(test_env, label="mtest", drop_topics=True) as env:
        yield env
