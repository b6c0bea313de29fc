"""Fault: the projection is killed with SIGKILL again and again at random (seeded) moments of a
catch-up: during start-up, while positioning, mid-batch.

After the last restart has caught up and the service is stopped, the tables must equal a clean
rebuild into the same database (``python -m services.projection.rebuild``, every row of every
read model compared) and the reconciliation command must find no difference.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.process import PROJECTION_APP, ServiceProcess, run_module
from services.projection.store import READ_MODEL_TABLES
from tests.faults.conftest import reconcile, report
from tests.integration.projection.harness import (
    applied_records,
    end_offsets,
    produce,
    produce_raw,
    snapshot,
    wait_caught_up,
)
from tests.support import TestEnv, poll_until
from tests.unit.projection.factory import random_stream

pytestmark = pytest.mark.integration

TABLES = (*READ_MODEL_TABLES, "projection_offsets")
ENV = {
    "DCR_PROJECTION_BATCH_MAX_RECORDS": "10",
    "DCR_PROJECTION_SESSION_TIMEOUT_MS": "6000",
}


@pytest.mark.parametrize(
    ("seed", "kills", "n"),
    [
        pytest.param(101, 4, 3000, id="4-kills"),
        pytest.param(202, 12, 6000, id="12-kills", marks=pytest.mark.heavy),
    ],
)
async def test_sigkill_at_random_points_then_equal_to_a_clean_rebuild(
    fault_env: TestEnv, tmp_path: Path, seed: int, kills: int, n: int
) -> None:
    rng = random.Random(seed)
    events = random_stream(seed=seed, n=n, base=datetime.now(UTC))
    third = len(events) // 3
    await produce(fault_env.bootstrap, fault_env.topic_prefix, events[:third])
    await produce_raw(fault_env.bootstrap, fault_env.topic("dcr.visits"), b"x", b"{bad", [])
    await produce(fault_env.bootstrap, fault_env.topic_prefix, events[third:])
    total = sum((await end_offsets(fault_env.bootstrap, fault_env.topic_prefix)).values())

    # random moments: some a random time after start (start-up, group join, positioning),
    # the others at a random share of the catch-up (mid-batch)
    plan = sorted(rng.uniform(0.05, 0.9) for _ in range(kills))
    injected: list[str] = []
    proc = ServiceProcess(
        tmp_path, "projection", PROJECTION_APP, env=ENV, base=fault_env.env()
    ).start()
    try:
        for i, share in enumerate(plan):
            if rng.random() < 0.3:
                delay = rng.uniform(0.2, 2.5)
                await asyncio.sleep(delay)  # the random moment itself, not a wait for a state
                moment = f"{delay:.2f} s after start"
            else:

                async def reached(share: float = share, proc: ServiceProcess = proc) -> bool:
                    assert proc.alive, proc.log()
                    return await applied_records(fault_env.dsn) >= share * total

                await poll_until(reached, timeout=120, interval=0.01, what=f"{share:.0%} applied")
                moment = f"at {share:.0%} of the catch-up"
            applied = await applied_records(fault_env.dsn)
            proc.kill9()
            injected.append(f"kill #{i + 1} {moment} ({applied}/{total} records applied)")
            proc = proc.restarted().start()
        await proc.wait_healthy(timeout=60)
        await wait_caught_up(fault_env.dsn, fault_env.bootstrap, fault_env.topic_prefix, 120)
    finally:
        proc.terminate()
    live = await snapshot(fault_env.dsn, TABLES)
    assert live["district_daily"] and live["visits"] and live["projection_events"]

    rebuild = await run_module("services.projection.rebuild", timeout=180, base=fault_env.env())
    assert rebuild.code == 0, rebuild.err
    rebuilt = await snapshot(fault_env.dsn, TABLES)
    report(
        f"SIGKILL x{kills} during a catch-up (seed {seed})",
        kills=injected,
        records=total,
        rebuild=rebuild.err.strip().splitlines()[-1],
    )
    differing = [t for t in TABLES if rebuilt[t] != live[t]]
    assert not differing, f"live tables differ from a clean rebuild: {differing}"
    done = await reconcile(wait_s=10, base=fault_env.env())
    assert done.code == 0, done.out
