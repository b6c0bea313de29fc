"""Per-test isolation for projection tests: their assertions are exact, so each test gets its own
database (migrated) and topic prefix on top of the session's ``test_env`` (same tokens)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.db.migrate import apply_migrations
from shared.kafka.admin import ensure_topics
from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration


@pytest.fixture
async def iso_env(test_env: TestEnv, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TestEnv]:
    """A fresh database and topic prefix for one test (env vars point at them meanwhile)."""
    run = uuid.uuid4().hex[:10]
    base, _ = test_env.dsn.rsplit("/", 1)
    db_name = f"dcr_ptest_{run}"
    dsn = f"{base}/{db_name}"
    prefix = f"ptest-{run}."
    admin = await asyncpg.connect(test_env.dsn)
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    try:
        await apply_migrations(dsn)
        await ensure_topics(test_env.bootstrap, 6, prefix=prefix)
        monkeypatch.setenv("DCR_DB_DSN", dsn)
        monkeypatch.setenv("DCR_KAFKA_TOPIC_PREFIX", prefix)
        yield TestEnv(test_env.bootstrap, prefix, dsn, test_env.tokens)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await admin.close()
