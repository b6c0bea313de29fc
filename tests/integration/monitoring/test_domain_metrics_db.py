"""services/projection/domain_metrics.py against a real (isolated, migrated) PostgreSQL: an empty
database reads as zeros, a running rebuild freezes the snapshot instead of exporting half-replayed
counters, and the refresh task keeps the last snapshot when the database fails."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from services.projection import domain_metrics as dm
from services.projection.settings import ProjectionSettings
from services.projection.store import REBUILD_LOCK_NS
from shared.city import load_city
from shared.settings import CitySettings
from tests.support import poll_until

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration

CITY = load_city(CitySettings().file)


async def test_empty_read_models_read_as_zeros(iso_env: TestEnv) -> None:
    conn = await asyncpg.connect(iso_env.dsn)
    try:
        snapshot = await dm.read_snapshot(conn, CITY, ProjectionSettings())
    finally:
        await conn.close()
    assert snapshot is not None
    assert snapshot.visits == {} and snapshot.stock == {} and snapshot.last_record is None
    text = "".join(str(m) for m in dm.render(snapshot, CITY))
    assert "dcr_visits_started" in text


async def test_a_running_rebuild_freezes_the_snapshot(iso_env: TestEnv) -> None:
    pool = await asyncpg.create_pool(iso_env.dsn, min_size=1, max_size=2)
    rebuild = await asyncpg.connect(iso_env.dsn)
    registry = CollectorRegistry()
    source = dm.install_domain_metrics(pool, CITY, registry=registry, refresh_s=0.2)
    try:
        first = await poll_until(lambda: _snapshot(source), timeout=10, what="first snapshot")
        assert first is not None
        assert await rebuild.fetchval("SELECT pg_try_advisory_lock($1, 0)", REBUILD_LOCK_NS)
        conn = await asyncpg.connect(iso_env.dsn)
        try:
            assert await dm.read_snapshot(conn, CITY, ProjectionSettings()) is None
        finally:
            await conn.close()
        await source.refresh()
        assert source.snapshot is first, "kept while the rebuild runs"
        await rebuild.execute("SELECT pg_advisory_unlock($1, 0)", REBUILD_LOCK_NS)
        await poll_until(
            lambda: _newer(source, first.taken_at), timeout=10, what="refresh after the rebuild"
        )
        assert "dcr_domain_metrics_last_refresh_timestamp_seconds" in (
            generate_latest(registry).decode()
        )
    finally:
        await source.aclose()
        await rebuild.close()
        await pool.close()


async def test_refresh_failures_keep_the_last_snapshot(iso_env: TestEnv) -> None:
    pool = await asyncpg.create_pool(iso_env.dsn, min_size=1, max_size=2)
    # connects lazily, to a database that does not exist: every acquire fails
    broken = await asyncpg.create_pool(iso_env.dsn + "_missing", min_size=0, max_size=1)
    source = dm.install_domain_metrics(pool, CITY, registry=CollectorRegistry(), refresh_s=0.1)
    try:
        first = await poll_until(lambda: _snapshot(source), timeout=10, what="first snapshot")
        assert first is not None
        before = dm.REFRESH_ERRORS._value.get()
        source.pool = broken
        await poll_until(
            lambda: _errors_above(before + 2), timeout=10, what="failed refreshes counted"
        )
        assert source.snapshot is first, "the last good snapshot is kept"
        assert source.live, "failures do not stop the refresh task"
        source.pool = pool
        await poll_until(lambda: _newer(source, first.taken_at), timeout=10, what="recovery")
    finally:
        await source.aclose()
        await broken.close()
        await pool.close()
    assert not source.live


async def _errors_above(n: float) -> bool:
    return bool(dm.REFRESH_ERRORS._value.get() > n)


async def _snapshot(source: dm.DomainMetrics) -> dm.Snapshot | None:
    return source.snapshot


async def _newer(source: dm.DomainMetrics, taken_at: float) -> bool:
    return source.snapshot is not None and source.snapshot.taken_at > taken_at
