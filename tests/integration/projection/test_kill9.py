"""Exactly once in effect: kill -9 at random moments, restart, nothing lost or double counted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.integration.projection.harness import (
    ProjectionProcess,
    applied_records,
    assert_api_matches_oracle,
    end_offsets,
    produce,
    snapshot,
    wait_caught_up,
)
from tests.support import ops_auth, poll_until, scrape_auth
from tests.unit.projection.factory import CITY, random_stream
from tests.unit.projection.oracle import Oracle

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration


async def test_kill9_mid_stream_and_restart_gives_exact_tables(
    iso_env: TestEnv, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    events = random_stream(seed=7, n=4000, base=now)
    first, second = events[:2500], events[2500:]
    await produce(iso_env.bootstrap, iso_env.topic_prefix, first)
    total_first = sum((await end_offsets(iso_env.bootstrap, iso_env.topic_prefix)).values())
    small_batches = {
        "DCR_PROJECTION_BATCH_MAX_RECORDS": "10",
        "DCR_PROJECTION_SESSION_TIMEOUT_MS": "6000",
    }

    scraper = iso_env.tokens["prometheus"]
    proc = ProjectionProcess(iso_env, tmp_path, **small_batches).start()
    kills = 0
    try:
        # kill -9 twice while it is part-way through the first half
        for fraction in (0.2, 0.6):

            async def progressed(fraction: float = fraction) -> bool:
                n = await applied_records(iso_env.dsn)
                return n >= fraction * total_first

            await poll_until(progressed, timeout=60, interval=0.02, what="some progress")
            applied_before = await applied_records(iso_env.dsn)
            proc.kill9()
            kills += 1
            assert applied_before < total_first, "finished before the kill; make batches smaller"
            proc = ProjectionProcess(iso_env, tmp_path, **small_batches).start()
        # more events arrive while it recovers, with the first half's duplicates again
        await produce(iso_env.bootstrap, iso_env.topic_prefix, second + first[:300])
        await proc.wait_healthy()
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)

        oracle = Oracle(CITY).feed(events)
        days = [k[1] for k in oracle.district_days()]
        async with httpx.AsyncClient(
            base_url=proc.url, timeout=10, headers=ops_auth(iso_env)
        ) as client:
            await assert_api_matches_oracle(client, oracle, min(days), max(days))
            for fac in ("halmtorv", "amager"):
                r = await client.get(f"/v1/facilities/{fac}/stock")
                on_hand = {i["item"]: i["on_hand"] for i in r.json()["items"]}
                assert on_hand == {item: oracle.on_hand(fac, item) for item in on_hand}, fac
                assert set(on_hand) == {i for f_, i, _, _ in oracle.movements if f_ == fac} | {
                    i for (f_, i) in oracle.stock_counts if f_ == fac
                }
            r = await client.get("/v1/alerts", params={"limit": 1000})
            assert sorted(a["alert_id"] for a in r.json()["alerts"]) == sorted(
                a["alert_id"] for a in oracle.alerts.values()
            )
        tables = await snapshot(iso_env.dsn, ("projection_events",))
        assert len(tables["projection_events"]) == len(oracle.seen)
        assert kills == 2
        # the restarted instance reports its work: applied events, batches, zero lag
        assert await proc.metric("dcr_projection_events_applied_total", scraper) > 0
        assert await proc.metric("dcr_projection_batch_size_records_count", scraper) > 0
        assert await proc.metric("dcr_projection_batch_apply_duration_seconds_count", scraper) > 0
        assert await proc.metric("dcr_projection_duplicate_events_total", scraper) >= 300
        async with httpx.AsyncClient(
            base_url=proc.url, timeout=5, headers=ops_auth(iso_env)
        ) as client:
            metrics = (await client.get("/metrics", headers=scrape_auth(iso_env))).text
        lag = [
            line
            for line in metrics.splitlines()
            if line.startswith("dcr_projection_consumer_lag_records{")
        ]
        assert lag and all(line.endswith(" 0.0") for line in lag), lag
        assert 'topic="dcr.visits"' in metrics  # catalogue names, not prefixed test topics
        assert "dcr_projection_last_applied_event_age_seconds" in metrics
    finally:
        proc.terminate()
