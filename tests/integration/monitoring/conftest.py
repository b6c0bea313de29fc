"""Fixtures of the monitoring integration tests: an isolated database and topic prefix per test
module on top of the session's ``test_env`` (same broker, tokens and secrets), so that the
traffic these tests send (overdoses, drug alerts, dead letters) never reaches other tests' topics
and their assertions can be exact."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support import TestEnv, isolated_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def iso_env(test_env: TestEnv) -> AsyncIterator[TestEnv]:
    """A fresh migrated database and topic prefix for one test module."""
    async with isolated_env(test_env, label="mtest", drop_topics=True) as env:
        yield env


@pytest.fixture(scope="module")
def iso_environ(iso_env: TestEnv) -> Iterator[TestEnv]:
    """``iso_env`` in os.environ while the module runs (for apps started in-process)."""
    saved = {k: os.environ.get(k) for k in ("DCR_DB_DSN", "DCR_KAFKA_TOPIC_PREFIX")}
    os.environ["DCR_DB_DSN"] = iso_env.dsn
    os.environ["DCR_KAFKA_TOPIC_PREFIX"] = iso_env.topic_prefix
    try:
        yield iso_env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
