"""Exactly one drug alert evaluator whatever the number of incident instances: two real incident
processes on the real Kafka and PostgreSQL (an isolated database and topic prefix), the leader is
SIGKILLed in the middle of an episode; the standby takes over, and the episode raises exactly
one alert (none missed, none doubled). Liveness and leadership are visible in /healthz and
/metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from harness.process import INCIDENT_APP, ServiceProcess
from shared.events.vocabulary import AlertReason
from tests.integration.ingest.conftest import alert_worker_caught_up, bearer
from tests.integration.ingest.test_drug_alerts import alerts, overdose
from tests.support import TestEnv, isolated_env, poll_until

pytestmark = pytest.mark.integration

FAST = {"DCR_ALERTS_RETRY_S": "0.3"}


@pytest.fixture
async def own_env(test_env: TestEnv) -> AsyncIterator[TestEnv]:
    async with isolated_env(test_env, label="leader", drop_topics=True) as env:
        yield env


async def post(proc: ServiceProcess, env: TestEnv, minutes_ago: float) -> None:
    async with httpx.AsyncClient(base_url=proc.url, timeout=10) as c:
        r = await c.post(
            "/v1/incidents", json=overdose("amager", minutes_ago), headers=bearer(env, "amager")
        )
    assert r.status_code == 202, r.text


async def leaders(procs: list[ServiceProcess], env: TestEnv) -> list[ServiceProcess]:
    scraper = env.tokens["prometheus"]
    return [
        p for p in procs if p.alive and await p.metric("dcr_drug_alert_worker_leader", scraper) == 1
    ]


async def test_killing_the_leader_mid_episode_misses_and_doubles_nothing(
    own_env: TestEnv, tmp_path: Path
) -> None:
    procs = [
        ServiceProcess(
            tmp_path, f"incident-{i}", INCIDENT_APP, env=FAST, base=own_env.env()
        ).start()
        for i in (1, 2)
    ]
    try:
        for p in procs:
            await p.wait_healthy()
        [leader] = await poll_until(
            lambda: leaders(procs, own_env), timeout=30, what="exactly one leader"
        )
        [standby] = [p for p in procs if p is not leader]
        async with httpx.AsyncClient(timeout=5) as c:
            health = (await c.get(f"{standby.url}/healthz")).json()
        assert health["checks"]["alert_worker"] is True  # a live standby is healthy

        await post(standby, own_env, 50)
        await post(standby, own_env, 40)
        await poll_until(
            lambda: alert_worker_caught_up(own_env), timeout=30, what="the leader to commit both"
        )
        leader.kill9()
        await post(standby, own_env, 30)  # completes the episode while the leader is dead
        [alert] = await poll_until(
            lambda: alerts(own_env, "amager", AlertReason.OVERDOSE_CLUSTER),
            timeout=30,
            what="the standby to take over and raise the amager alert",
        )
        assert await leaders(procs, own_env) == [standby]
        await post(standby, own_env, 20)  # same episode: nothing new

        restarted = leader.restarted().start()  # the old leader comes back as a standby
        procs.append(restarted)
        await restarted.wait_healthy()
        await poll_until(
            lambda: alert_worker_caught_up(own_env), timeout=30, what="everything committed"
        )
        assert await alerts(own_env, "amager", AlertReason.OVERDOSE_CLUSTER) == [alert]
        assert await leaders(procs, own_env) == [standby]
        assert (
            await restarted.metric(
                "dcr_drug_alert_worker_lag_records", own_env.tokens["prometheus"]
            )
            == 0
        )
    finally:
        for p in procs:
            p.terminate()
