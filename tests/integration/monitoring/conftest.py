"""Fixtures of the monitoring integration tests: an isolated database and topic prefix per test
module on top of the session's ``test_env`` (same broker, tokens and secrets), so that the
traffic these tests send (overdoses, drug alerts, dead letters) never reaches other tests' topics
and their assertions can be exact."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from shared.db.migrate import apply_migrations
from shared.kafka.admin import ensure_topics
from tests.integration.conftest import TestEnv, _delete_topics
from tests.support import drop_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def iso_env(test_env: TestEnv) -> AsyncIterator[TestEnv]:
    """A fresh migrated database and topic prefix for one test module."""
    run = uuid.uuid4().hex[:10]
    base, _ = test_env.dsn.rsplit("/", 1)
    db_name = f"dcr_mtest_{run}"
    dsn = f"{base}/{db_name}"
    prefix = f"mtest-{run}."
    admin = await asyncpg.connect(test_env.dsn)
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    try:
        await apply_migrations(dsn)
        await ensure_topics(test_env.bootstrap, 6, prefix=prefix)
        yield TestEnv(test_env.bootstrap, prefix, dsn, test_env.tokens)
    finally:
        await drop_database(admin, db_name)
        await admin.close()
        await _delete_topics(test_env.bootstrap, prefix)


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
