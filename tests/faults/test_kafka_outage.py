"""Fault: the Kafka broker is stopped (SIGTERM) or killed (SIGKILL) while facilities keep
posting, then restarted on the same ports and data directory.

Runs on a throwaway broker (never the shared one on :9092). Intake, supply and the projection run
as real processes pointed at it. Facilities post reports with Idempotency-Keys and retry every
503 (or dropped connection) with the same key. Afterwards: every report was eventually answered
202; the read models hold exactly the accepted events (by id), each counted once, and nothing
else; the reconciliation command agrees with the log.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from harness.process import INTAKE_APP, PROJECTION_APP, SUPPLY_APP, ServiceProcess
from shared.city import load_city
from shared.settings import CitySettings
from tests.faults.conftest import reconcile, report
from tests.faults.throwaway import ThrowawayKafka
from tests.faults.traffic import Traffic
from tests.integration.projection.harness import wait_caught_up
from tests.support import TestEnv, isolated_env, poll_until

pytestmark = pytest.mark.integration

FACILITIES = ["halmtorv", "maendenes-hjem", "nordvest", "sydhavn"]
SERVICE_ENV = {
    "DCR_KAFKA_PUBLISH_TIMEOUT_S": "2",
    "DCR_INGEST_RETRY_AFTER_S": "1",
    "DCR_PROJECTION_RETRY_BACKOFF_S": "0.5",
    "DCR_PROJECTION_SESSION_TIMEOUT_MS": "6000",
}


@pytest.mark.parametrize(
    ("outages", "per_phase"),
    [
        pytest.param((signal.SIGTERM, signal.SIGKILL), 40, id="sigterm-then-sigkill"),
        pytest.param(
            (signal.SIGKILL, signal.SIGTERM, signal.SIGKILL, signal.SIGKILL),
            150,
            id="four-outages",
            marks=pytest.mark.heavy,
        ),
    ],
)
async def test_broker_outage_while_facilities_post(
    test_env: TestEnv,
    tmp_path: Path,
    outages: tuple[signal.Signals, ...],
    per_phase: int,
) -> None:
    if not ThrowawayKafka.available():
        pytest.fail("Kafka jars missing: run deploy/scripts/kafka.sh install")
    kafka = ThrowawayKafka(tmp_path / "kafka")
    kafka.format()
    kafka.start()
    procs: list[ServiceProcess] = []
    traffic_task: asyncio.Task[None] | None = None
    try:
        await kafka.wait_ready()
        async with isolated_env(test_env, label="fkafka", bootstrap=kafka.bootstrap) as env:
            intake = ServiceProcess(
                tmp_path, "intake", INTAKE_APP, env=SERVICE_ENV, base=env.env()
            ).start()
            supply = ServiceProcess(
                tmp_path, "supply", SUPPLY_APP, env=SERVICE_ENV, base=env.env()
            ).start()
            projection = ServiceProcess(
                tmp_path, "projection", PROJECTION_APP, env=SERVICE_ENV, base=env.env()
            ).start()
            procs += [intake, supply, projection]
            for p in procs:
                await p.wait_healthy(timeout=60)

            city = load_city(CitySettings().file)
            traffic = Traffic(
                {"intake": intake.url, "supply": supply.url},
                env.tokens,
                city,
                FACILITIES,
                seed=len(outages),
                max_per_facility=per_phase * (len(outages) + 1),
            )
            traffic_task = asyncio.create_task(traffic.run())
            injected: list[str] = []

            async def until_accepted(n: int, what: str) -> None:
                async def enough() -> bool:
                    assert traffic_task is not None
                    if traffic_task.done():
                        traffic_task.result()  # raise what stopped the clients
                    return traffic.accepted >= n

                await poll_until(enough, timeout=120, what=what)

            for sig in outages:
                await until_accepted(traffic.accepted + per_phase, "reports accepted")
                refused_before = traffic.refused_503
                started = time.monotonic()
                await asyncio.to_thread(kafka.stop, sig)  # traffic goes on meanwhile

                async def refusing(before: int = refused_before) -> bool:
                    return traffic.refused_503 >= before + 8

                await poll_until(refusing, timeout=60, what="503s while the broker is down")
                kafka.start()
                await kafka.wait_ready()
                injected.append(
                    f"{sig.name} at {traffic.accepted} accepted, broker back after "
                    f"{time.monotonic() - started:.1f} s, "
                    f"{traffic.refused_503 - refused_before} x 503 meanwhile"
                )
            await until_accepted(traffic.accepted + per_phase, "traffic after the last restart")
            traffic.stop.set()
            await traffic_task
            await traffic.drain(timeout=90)
            assert not traffic.unexpected, traffic.unexpected[:10]

            await wait_caught_up(env.dsn, env.bootstrap, env.topic_prefix, timeout=120)
            rows = await _read_models(env.dsn)
            accepted_ids = {r.event_id for r in traffic.reports}
            report(
                f"broker outages {[s.name for s in outages]}",
                outages=injected,
                reports=len(traffic.reports),
                attempts=dict(traffic.outcomes()),
                retried_reports=sum(len(r.outcomes) > 1 for r in traffic.reports),
                applied_events=len(rows.ids),
            )
            # every 202 (first try or after retries) is in the read model exactly once ...
            assert rows.ids == accepted_ids, (
                f"missing {len(accepted_ids - rows.ids)}, unexpected {len(rows.ids - accepted_ids)}"
            )
            assert rows.daily == traffic.expected_daily()
            assert traffic.refused_503 > 0
            # ... and the projection stayed up through the outages
            assert await projection.healthy()
            done = await reconcile(wait_s=30, base=env.env())
            assert done.code == 0, done.out
    finally:
        if traffic_task is not None and not traffic_task.done():
            traffic_task.cancel()
        for p in procs:
            p.terminate()
        kafka.stop(signal.SIGKILL)


class _Rows:
    def __init__(self, ids: set[str], daily: dict[tuple[str, date, str], int]) -> None:
        self.ids = ids
        self.daily = daily


async def _read_models(dsn: str) -> _Rows:
    conn = await asyncpg.connect(dsn)
    try:
        ids = {str(r["id"]) for r in await conn.fetch("SELECT id FROM projection_events")}
        daily: dict[tuple[str, date, str], int] = {}
        for r in await conn.fetch(
            "SELECT district, day, refusals, sharps_returned_count FROM district_daily"
        ):
            for col in ("refusals", "sharps_returned_count"):
                if r[col]:
                    daily[(r["district"], r["day"], col)] = int(r[col])
        return _Rows(ids, daily)
    finally:
        await conn.close()
