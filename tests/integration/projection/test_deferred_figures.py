"""A catch-up leaves the visit figures of its large batches pending (``visit_figures_pending``,
committed with the batch) and recomputes them all once caught up; a kill -9 while figures are
pending loses none of them: the restarted projection recomputes them, and the read API equals
the oracle."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.integration.projection.harness import (
    ProjectionProcess,
    applied_records,
    assert_api_matches_events,
    end_offsets,
    produce,
    rows,
    wait_caught_up,
)
from tests.support import poll_until
from tests.unit.projection.factory import random_stream

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration

#: Small batches that count as large: every batch fetched while more records wait defers its
#: figures, and only catching up recomputes them (the delay is far longer than the test).
BEHIND = {
    "DCR_PROJECTION_BATCH_MAX_RECORDS": "40",
    "DCR_PROJECTION_FIGURES_DEFER_MIN_RECORDS": "20",
    "DCR_PROJECTION_FIGURES_MAX_DELAY_S": "600",
    "DCR_PROJECTION_SESSION_TIMEOUT_MS": "6000",
}


async def _pending(dsn: str) -> int:
    return int((await rows(dsn, "SELECT count(*) FROM visit_figures_pending"))[0][0])


async def test_figures_left_pending_by_a_catch_up_survive_kill9_and_end_exact(
    iso_env: TestEnv, tmp_path: Path
) -> None:
    events = random_stream(seed=31, n=4000, base=datetime.now(UTC))
    await produce(iso_env.bootstrap, iso_env.topic_prefix, events)
    total = sum((await end_offsets(iso_env.bootstrap, iso_env.topic_prefix)).values())
    proc = ProjectionProcess(iso_env, tmp_path, **BEHIND).start()
    try:

        async def deferring() -> bool:
            return await _pending(iso_env.dsn) > 0 and await applied_records(iso_env.dsn) > 400

        await poll_until(deferring, timeout=60, interval=0.02, what="figures left pending")
        proc.kill9()
        assert await applied_records(iso_env.dsn) < total, "caught up before the kill"
        assert await _pending(iso_env.dsn) > 0  # committed with the batches that left them

        proc = ProjectionProcess(iso_env, tmp_path, **BEHIND).start()
        await proc.wait_healthy()
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        # the batch that reached the end recomputed every pending figure in its transaction
        assert await _pending(iso_env.dsn) == 0
        await assert_api_matches_events(iso_env, proc.url, events)
        assert (
            await proc.metric(
                "dcr_projection_figures_deferred_batches_total", iso_env.tokens["prometheus"]
            )
            > 0
        )  # the restarted instance was behind too, and deferred
    finally:
        proc.terminate()
