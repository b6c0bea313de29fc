"""Fault: brokers of a 3-node KRaft cluster die while facilities keep posting.

Runs on a throwaway cluster (:class:`tests.faults.throwaway.ThrowawayKafkaCluster`, never the
shared broker on :9092) secured like ``make up KAFKA_NODES=3``: SASL_SSL only, SCRAM identities
added at format, the standard authorizer denying by default and the ACLs of
shared/kafka/acls.py for this test's topics; the catalogue topics at replication factor 3 and
min.insync.replicas=2. Intake, supply and the projection run as real processes, each with its
own identity over TLS (a client without a credential gets nothing in); facilities post with
Idempotency-Keys and retry every 503 with the same key (tests/faults/traffic.py).

1. SIGKILL the broker leading the busiest partition: ingest goes on answering 202 with that
   broker still dead (a short burst of retried 503s while it is fenced is allowed and counted).
2. SIGKILL a second broker: no write has 2 in-sync copies any more, so ingest refuses every
   report with 503 (no 202), while the read models are still served.
3. Restart both: everything converges: every 202 is in the read models exactly once, the daily
   figures are the sums of the accepted reports, and the reconciliation command (as the
   projection's identity) exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from harness.isolation import kafka_env
from harness.process import INTAKE_APP, PROJECTION_APP, SUPPLY_APP, ServiceProcess
from shared.city import load_city
from shared.kafka.acls import create_acls, grants
from shared.kafka.security import Target, target_kwargs
from shared.kafka.topics import EVENT_TOPICS, VISITS
from shared.settings import CitySettings
from tests.faults.conftest import reconcile, report
from tests.faults.test_kafka_outage import FACILITIES, SERVICE_ENV, _read_models
from tests.faults.throwaway import (
    ThrowawayKafka,
    ThrowawayKafkaCluster,
    make_kafka_secrets,
    try_write,
)
from tests.faults.traffic import Traffic
from tests.integration.projection.harness import end_offsets, wait_caught_up
from tests.support import TestEnv, isolated_env, ops_auth, poll_until

pytestmark = pytest.mark.integration

PER_PHASE = 40


async def describe_partitions(target: Target, topics: list[str]) -> list[dict[str, Any]]:
    """The metadata of every partition of ``topics`` (with its "topic" added)."""
    admin = AIOKafkaAdminClient(**target_kwargs(target), request_timeout_ms=3000)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
        return [{**p, "topic": t["topic"]} for t in described for p in t["partitions"]]
    finally:
        await admin.close()


async def partition_leaders(target: Target, topics: list[str]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> id of the broker leading it (-1: no leader)."""
    return {
        (p["topic"], int(p["partition"])): int(p["leader"])
        for p in await describe_partitions(target, topics)
    }


async def busiest_leader(target: Target, env: TestEnv) -> tuple[int, tuple[str, int]]:
    """The broker leading the event partition with the most records, and that partition."""
    ends = await end_offsets(target, env.topic_prefix)
    busiest = max(ends, key=lambda tp: ends[tp])
    leaders = await partition_leaders(target, [env.topic(t) for t in EVENT_TOPICS])
    return leaders[busiest], busiest


async def test_cluster_survives_one_broker_and_refuses_writes_without_two(
    test_env: TestEnv, tmp_path: Path
) -> None:
    if not ThrowawayKafka.available():
        pytest.fail("Kafka jars missing: run deploy/scripts/kafka.sh install")
    cluster = ThrowawayKafkaCluster(tmp_path / "kafka", make_kafka_secrets(tmp_path / "secrets"))
    cluster.format()
    cluster.start()
    admin = cluster.target
    all_nodes = {n.node_id for n in cluster.nodes}
    procs: list[ServiceProcess] = []
    traffic_task: asyncio.Task[None] | None = None
    began = time.monotonic()
    try:
        await cluster.wait_brokers(all_nodes)
        async with isolated_env(test_env, label="fcluster", bootstrap=admin, replication=3) as env:
            await create_acls(admin, grants(env.topic_prefix))
            refused = await try_write({"bootstrap_servers": cluster.bootstrap}, env.topic(VISITS))
            assert refused is not None, "a client without a credential wrote to the cluster"
            apps = {"intake": INTAKE_APP, "supply": SUPPLY_APP, "projection": PROJECTION_APP}
            started = {
                name: ServiceProcess(  # each service as its own identity over TLS
                    tmp_path,
                    name,
                    app,
                    base=env.env(**SERVICE_ENV, **kafka_env(cluster.settings(name))),
                ).start()
                for name, app in apps.items()
            }
            procs += started.values()
            await asyncio.gather(*(p.wait_healthy(timeout=90) for p in procs))
            event_topics = [env.topic(t) for t in EVENT_TOPICS]
            partitions = await describe_partitions(admin, event_topics)
            assert partitions and all(len(p["replicas"]) == 3 for p in partitions), partitions

            traffic = Traffic(
                {"intake": started["intake"].url, "supply": started["supply"].url},
                env.tokens,
                load_city(CitySettings().file),
                FACILITIES,
                seed=16,
                max_per_facility=PER_PHASE * 4,
            )
            traffic_task = asyncio.create_task(traffic.run())

            async def until_accepted(n: int, what: str, timeout: float = 90) -> None:
                async def enough() -> bool:
                    assert traffic_task is not None
                    if traffic_task.done():
                        traffic_task.result()  # raise what stopped the clients
                    return traffic.accepted >= n

                await poll_until(enough, timeout=timeout, what=what)

            await until_accepted(PER_PHASE, "reports accepted by the healthy cluster")

            # 1. the leader of the busiest partition dies; ingest goes on with 2 of 3 copies
            first, busiest = await busiest_leader(admin, env)
            assert first in all_nodes, f"no leader for {busiest}"
            refused_before_first = traffic.refused_503
            killed_at = traffic.accepted
            cluster.node(first).stop(signal.SIGKILL)
            await until_accepted(killed_at + PER_PHASE, "202s with one broker dead")
            assert not cluster.node(first).running
            await cluster.wait_brokers(all_nodes - {first})

            async def led_by_survivors() -> bool:
                leaders = await partition_leaders(admin, event_topics)
                return first not in leaders.values() and -1 not in leaders.values()

            await poll_until(led_by_survivors, timeout=30, what="new leaders for every partition")
            burst_first = traffic.refused_503 - refused_before_first

            # 2. a second broker dies: no 2 in-sync copies anywhere, so no 202 at all
            second = next(iter(sorted(all_nodes - {first})))
            refused_before_second = traffic.refused_503
            cluster.node(second).stop(signal.SIGKILL)

            async def refusing(n: int) -> bool:
                return traffic.refused_503 >= n

            await poll_until(
                lambda: refusing(refused_before_second + 8),
                timeout=60,
                what="503s with two brokers dead",
            )
            accepted_while_down = traffic.accepted
            refused_mark = traffic.refused_503
            await poll_until(
                lambda: refusing(refused_mark + 12),
                timeout=60,
                what="more 503s with two brokers dead",
            )
            assert traffic.accepted == accepted_while_down, "a 202 without 2 in-sync copies"
            async with httpx.AsyncClient(
                base_url=started["projection"].url, headers=ops_auth(env)
            ) as reader:
                served = await reader.get("/v1/districts/vesterbro/daily", timeout=10)
            assert served.status_code == 200, served.text

            # 3. both come back: the cluster converges and nothing is lost or doubled
            restarted_at = time.monotonic()
            cluster.node(first).start()
            cluster.node(second).start()
            await cluster.wait_brokers(all_nodes)
            await until_accepted(traffic.accepted + PER_PHASE, "202s after the restore")
            recovered_s = time.monotonic() - restarted_at
            traffic.stop.set()
            await traffic_task
            await traffic.drain(timeout=90)
            assert not traffic.unexpected, traffic.unexpected[:10]

            await wait_caught_up(env.dsn, admin, env.topic_prefix, timeout=120)
            rows = await _read_models(env.dsn)
            accepted_ids = {r.event_id for r in traffic.reports}
            report(
                "secured 3-node cluster (SASL_SSL): leader killed, then a second broker",
                anonymous_client=type(refused).__name__,
                busiest_partition=f"{busiest} led by node {first}",
                second_killed=second,
                retried_503s_with_one_broker_dead=burst_first,
                refused_503s_with_two_dead=traffic.refused_503 - refused_before_second,
                seconds_to_202_after_restore=f"{recovered_s:.1f}",
                reports=len(traffic.reports),
                attempts=dict(traffic.outcomes()),
                applied_events=len(rows.ids),
                total_seconds=f"{time.monotonic() - began:.1f}",
            )
            assert rows.ids == accepted_ids, (
                f"missing {len(accepted_ids - rows.ids)}, unexpected {len(rows.ids - accepted_ids)}"
            )
            assert rows.daily == traffic.expected_daily()
            assert await started["projection"].healthy()
            done = await reconcile(
                wait_s=30, base=env.env(**kafka_env(cluster.settings("projection")))
            )
            assert done.code == 0, done.out
    finally:
        if traffic_task is not None and not traffic_task.done():
            traffic_task.cancel()
        for p in procs:
            p.terminate()
        cluster.kill()
