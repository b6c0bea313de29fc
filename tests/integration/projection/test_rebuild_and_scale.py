"""A rebuild reproduces the live tables exactly; two instances through a rebalance (one of them
killed) give exact results."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.process import run_module
from services.projection.store import READ_MODEL_TABLES
from shared.kafka.topics import EVENT_TOPICS
from tests.integration.projection.harness import (
    ProjectionProcess,
    applied_records,
    assert_api_matches_events,
    produce,
    produce_raw,
    rows,
    snapshot,
    wait_caught_up,
)
from tests.support import poll_until
from tests.unit.projection.factory import random_stream

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration
TABLES = (*READ_MODEL_TABLES, "projection_offsets")


async def _rebuild(env: TestEnv) -> tuple[int, str]:
    done = await run_module("services.projection.rebuild", base=env.env())
    return done.code, done.err


async def test_rebuild_reproduces_the_live_tables(iso_env: TestEnv, tmp_path: Path) -> None:
    events = random_stream(seed=11, n=2000, base=datetime.now(UTC))
    await produce(iso_env.bootstrap, iso_env.topic_prefix, events[:1000])
    await produce_raw(iso_env.bootstrap, iso_env.topic("dcr.visits"), b"x", b"{bad", [])
    await produce(iso_env.bootstrap, iso_env.topic_prefix, events[1000:])
    # live: small batches; the rebuild uses large ones, so batch boundaries differ
    proc = ProjectionProcess(iso_env, tmp_path, DCR_PROJECTION_BATCH_MAX_RECORDS="7").start()
    try:
        await proc.wait_healthy()
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        code, err = await _rebuild(iso_env)
        assert code == 2 and "stop the projection service" in err  # refused while running
    finally:
        proc.terminate()
    live = await snapshot(iso_env.dsn, TABLES)
    assert all(
        live[t]
        for t in (
            "district_daily",
            "district_daily_breakdown",
            "visits",
            "stock_movements",
            "alerts",
        )
    )

    code, err = await _rebuild(iso_env)
    assert code == 0, err
    assert "records (100.0%)" in err and "1 unusable record" in err  # rich progress, logged
    rebuilt = await snapshot(iso_env.dsn, TABLES)
    for table in TABLES:
        assert rebuilt[table] == live[table], table

    # the service resumes where the rebuild stopped
    more = random_stream(seed=12, n=300, base=datetime.now(UTC))
    await produce(iso_env.bootstrap, iso_env.topic_prefix, more)
    proc = ProjectionProcess(iso_env, tmp_path).start()
    try:
        await proc.wait_healthy()
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        await assert_api_matches_events(iso_env, proc.url, events + more)
    finally:
        proc.terminate()


async def test_two_instances_split_the_work_through_a_rebalance(
    iso_env: TestEnv, tmp_path: Path
) -> None:
    events = random_stream(seed=21, n=4500, base=datetime.now(UTC))
    parts = events[:2000], events[2000:3500], events[3500:]
    env = {
        "DCR_PROJECTION_BATCH_MAX_RECORDS": "10",
        "DCR_PROJECTION_SESSION_TIMEOUT_MS": "6000",
        # every batch fetched behind leaves its visit figures pending: they are handed on
        # through visit_figures_pending across the rebalance and the kill
        "DCR_PROJECTION_FIGURES_DEFER_MIN_RECORDS": "5",
    }
    scraper = iso_env.tokens["prometheus"]
    await produce(iso_env.bootstrap, iso_env.topic_prefix, parts[0])
    a = ProjectionProcess(iso_env, tmp_path, "a", **env).start()
    b = ProjectionProcess(iso_env, tmp_path, "b", **env)
    try:
        await a.wait_healthy()

        async def some_applied() -> bool:
            return await applied_records(iso_env.dsn) > 200

        await poll_until(some_applied, timeout=30, interval=0.02, what="a applied some")
        b.start()
        await b.wait_healthy()

        async def split() -> bool:  # the rebalance completed: each owns some partitions
            owned = [await x.metric("dcr_projection_assigned_partitions", scraper) for x in (a, b)]
            return all(n > 0 for n in owned) and sum(owned) == 6 * len(EVENT_TOPICS)

        await poll_until(split, timeout=30, what="partitions split between a and b")
        await produce(iso_env.bootstrap, iso_env.topic_prefix, parts[1])

        async def both_working() -> bool:
            return (
                await b.metric("dcr_projection_events_applied_total", scraper) > 0
                and await a.metric("dcr_projection_events_applied_total", scraper) > 0
            )

        await poll_until(both_working, timeout=30, what="both instances applying events")
        a.kill9()  # its partitions move to b after the session timeout
        await produce(iso_env.bootstrap, iso_env.topic_prefix, parts[2])
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        assert await rows(iso_env.dsn, "SELECT * FROM visit_figures_pending") == []
        await assert_api_matches_events(iso_env, b.url, events)
        assert await b.metric("dcr_projection_figures_deferred_batches_total", scraper) > 0
    finally:
        a.terminate()
        b.terminate()
