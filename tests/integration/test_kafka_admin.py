"""Topic creation refuses what a broker set cannot hold, instead of reporting success: three
replicas on the single shared broker fail loudly (that is what a half-started cluster looks
like), and readiness for a 3-replica layout waits for three brokers."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.kafka.admin import ensure_topics, wait_until_ready
from tests.support import TestEnv, delete_topics

pytestmark = pytest.mark.integration


async def test_three_replicas_on_one_broker_are_refused_not_reported_created(
    test_env: TestEnv,
) -> None:
    prefix = f"rf3-{uuid.uuid4().hex[:10]}."
    try:
        with pytest.raises(KafkaError, match="topics not created"):
            await ensure_topics(test_env.bootstrap, 6, replication=3, prefix=prefix)
        admin = AIOKafkaAdminClient(bootstrap_servers=test_env.bootstrap)
        await admin.start()
        try:
            assert not [t for t in await admin.list_topics() if t.startswith(prefix)]
        finally:
            await admin.close()
    finally:
        await delete_topics(test_env.bootstrap, prefix)


async def test_readiness_for_three_replicas_waits_for_three_brokers(test_env: TestEnv) -> None:
    await wait_until_ready(test_env.bootstrap, timeout=10)  # one broker: ready for RF 1
    with pytest.raises(TimeoutError, match="1 of 3 brokers"):
        await wait_until_ready(test_env.bootstrap, timeout=2, brokers=3)
