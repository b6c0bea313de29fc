"""Fault: PostgreSQL is restarted (a clean fast shutdown, then an immediate one, i.e. a crash
with recovery) while the projection applies batches.

Runs on a throwaway cluster (never the shared one on :5432) with the events on the shared broker
under a fresh topic prefix. The projection (a real process, small batches) must roll back the
failed batches, retry, resume from its stored offsets and end with exact read models (the
independent oracle through the read API, and the reconciliation command); its rebuild lock must
still hold after the restarts.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from harness.process import PROJECTION_APP, ServiceProcess, run_module
from shared.kafka.admin import ensure_topics
from tests.faults.conftest import reconcile, report
from tests.faults.throwaway import ThrowawayPostgres, throwaway_postgres
from tests.integration.projection.harness import (
    applied_records,
    assert_api_matches_oracle,
    end_offsets,
    produce,
    produce_raw,
    wait_caught_up,
)
from tests.support import TestEnv, delete_topics, ops_auth, poll_until
from tests.unit.projection.factory import CITY, random_stream
from tests.unit.projection.oracle import Oracle

pytestmark = pytest.mark.integration


async def test_postgres_restarts_while_the_projection_applies_batches(
    test_env: TestEnv, tmp_path: Path
) -> None:
    if not ThrowawayPostgres.available():
        pytest.fail("needs Debian's PostgreSQL 15 binaries and root (runuser -u postgres)")
    prefix = f"fpg-{uuid.uuid4().hex[:10]}."
    await ensure_topics(test_env.bootstrap, 6, prefix=prefix)
    events = random_stream(seed=31, n=3000, base=datetime.now(UTC))
    await produce(test_env.bootstrap, prefix, events[:2000])
    await produce_raw(test_env.bootstrap, prefix + "dcr.visits", b"halmtorv", b"{bad", [])
    await produce(test_env.bootstrap, prefix, events[2000:])
    total = sum((await end_offsets(test_env.bootstrap, prefix)).values())
    proc: ServiceProcess | None = None
    scraper = test_env.tokens["prometheus"]
    try:
        async with throwaway_postgres() as pg:
            where = test_env.env(DCR_KAFKA_TOPIC_PREFIX=prefix, DCR_DB_DSN=pg.dsn)
            proc = ServiceProcess(
                tmp_path,
                "projection",
                PROJECTION_APP,
                env={
                    "DCR_PROJECTION_BATCH_MAX_RECORDS": "10",
                    "DCR_PROJECTION_RETRY_BACKOFF_S": "0.3",
                },
                base=where,
            ).start()
            injected = []
            for fraction, mode in ((0.15, "fast"), (0.5, "immediate")):

                async def progressed(fraction: float = fraction) -> bool:
                    return await applied_records(pg.dsn) >= fraction * total

                await poll_until(progressed, timeout=90, interval=0.05, what="some progress")
                applied = await applied_records(pg.dsn)
                failures = await _outage_seen(proc, scraper)
                pg.stop(mode)

                async def failing(before: float = failures) -> bool:
                    assert proc is not None
                    return await _outage_seen(proc, scraper) > before

                await poll_until(
                    failing, timeout=30, what="a failed batch or the lock session lost"
                )
                pg.start()
                injected.append(
                    f"pg_ctl stop -m {mode} at {applied}/{total} records applied, restarted"
                )
                assert applied < total, "caught up before the restart; use smaller batches"
            await wait_caught_up(pg.dsn, test_env.bootstrap, prefix, timeout=120)
            await proc.wait_healthy(timeout=30)
            failures = await proc.metric("dcr_projection_batch_failures_total", scraper)
            report(
                "PostgreSQL restarts under the projection",
                restarts=injected,
                records=total,
                batch_failures_retried=int(failures),
            )

            oracle = Oracle(CITY).feed(events)
            days = [k[1] for k in oracle.district_days()]
            async with httpx.AsyncClient(
                base_url=proc.url, timeout=10, headers=ops_auth(test_env)
            ) as client:
                await assert_api_matches_oracle(client, oracle, min(days), max(days))
            done = await reconcile(wait_s=30, base=where)
            assert done.code == 0, done.out
            assert "1 skipped" in done.out

            # the shared rebuild lock was re-taken after the restarts: a rebuild is refused
            rebuild = await run_module("services.projection.rebuild", timeout=60, base=where)
            assert rebuild.code == 2, rebuild.err
            assert "stop the projection service" in rebuild.err
            proc.terminate()
    finally:
        if proc is not None:
            proc.terminate()
        await delete_topics(test_env.bootstrap, prefix)


async def _outage_seen(proc: ServiceProcess, token: str) -> float:
    """How often the projection met the outage: a batch rolled back, or the session holding
    its rebuild lock lost between batches (it then stops applying until it holds it again)."""
    return await proc.metric("dcr_projection_batch_failures_total", token) + await proc.metric(
        "dcr_projection_lock_session_lost_total", token
    )
