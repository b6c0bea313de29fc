"""Session fixtures shared by every suite that needs the REAL Kafka and PostgreSQL started by
deploy/scripts (make test): tests/integration and tests/faults.

Isolation: every test session gets its own topic prefix and its own database (created from the
migrations and dropped at the end), so runs never see each other's events or rows. Unit tests
never request these fixtures, so they stay free of I/O.

Clock: tests marked ``clock`` run as if "now" were the instants ``DCR_TODAY`` chooses (see
tests/clock.py; ``make test-dates``).
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import time_machine
from pydantic import SecretStr

from harness.isolation import (
    create_database,
    database_dsn,
    database_name,
    delete_topics,
    drop_database,
    issue_tokens,
)
from shared.auth import dev_principals
from shared.city import load_city
from shared.kafka.admin import ensure_topics, wait_until_ready
from shared.settings import CitySettings, DatabaseSettings, KafkaSettings
from tests.clock import (
    accept_future_timestamps,
    instant_id,
    instants_for,
    requested_instants,
    take_request,
)
from tests.support import RunSettings, TestEnv


def pytest_configure(config: pytest.Config) -> None:
    take_request(os.environ)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A ``clock`` test runs once per instant of :func:`tests.clock.instants_for`."""
    if metafunc.definition.get_closest_marker("clock") is None:
        return
    integration = metafunc.definition.get_closest_marker("integration") is not None
    instants = instants_for(integration)
    if instants != [None]:
        ids = [instant_id(at) for at in instants]
        metafunc.parametrize("_travel", instants, indirect=True, ids=ids)


@pytest.fixture(autouse=True)
def _travel(request: pytest.FixtureRequest) -> Iterator[datetime | None]:
    """Travel (ticking) to this test's instant, if it has one; see tests/clock.py."""
    at: datetime | None = getattr(request, "param", None)
    if at is None:
        yield None
        return
    with time_machine.travel(at, tick=True):
        yield at


@pytest.fixture(scope="session")
async def test_env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TestEnv]:
    """The run's environment, as values: its own topic prefix and database on the servers the
    developer's environment names (``DCR_KAFKA_*``, ``DCR_DB_DSN``: read here, at the test
    session's composition root, and nowhere below it), fresh tokens and a random pseudonym
    secret (:class:`tests.support.RunSettings`). Nothing is put in ``os.environ``: apps get
    settings objects from the TestEnv, child processes ``TestEnv.env()``."""
    run = uuid.uuid4().hex[:10]
    server = DatabaseSettings().dsn.get_secret_value()
    kafka = KafkaSettings(topic_prefix=f"test-{run}.")
    dsn = database_dsn(server, f"dcr_test_{run}")
    # facilities, sanitation team, ops, analyst, prometheus
    tokens_file = Path(tmp_path_factory.mktemp("auth")) / "tokens.yaml"
    tokens = issue_tokens(tokens_file, dev_principals(load_city(CitySettings().file)))
    settings = RunSettings(tokens_file, SecretStr(secrets.token_hex(32)))
    await wait_until_ready(kafka.bootstrap_servers, timeout=30)
    await ensure_topics(kafka.bootstrap_servers, kafka.partitions, prefix=kafka.topic_prefix)
    if requested_instants() is not None:
        await accept_future_timestamps(kafka.bootstrap_servers, kafka.topic_prefix)
    db_name = database_name(dsn)
    await create_database(server, db_name)
    try:
        yield TestEnv(kafka.bootstrap_servers, kafka.topic_prefix, dsn, tokens, settings)
    finally:
        await drop_database(server, db_name)
        await delete_topics(kafka.bootstrap_servers, kafka.topic_prefix)
