"""The reconciliation command itself: its counting agrees with the independent test oracle, it
finds a tampered read model, a projection lagging behind and a missing dead letter, and exits
non-zero on each; ``--allow-lag`` compares the applied prefix only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from harness.process import run_module
from services.projection.app import create_app as projection_app
from services.projection.reconcile import Rec, count
from shared.events.envelope import to_headers, to_value
from tests.faults.conftest import reconcile
from tests.integration.projection.harness import produce, produce_raw, wait_caught_up
from tests.support import TestEnv, serve
from tests.unit.projection.factory import CITY, random_stream
from tests.unit.projection.oracle import Oracle


def test_counting_agrees_with_the_oracle() -> None:
    events = random_stream(seed=61, n=3000, base=datetime.now(UTC))
    records = [
        Rec(e.topic, 0, i, tuple((k, v.encode()) for k, v in to_headers(e).items()), to_value(e))
        for i, e in enumerate(events)
    ]
    records.append(Rec("dcr.visits", 0, len(records), (), b"{bad"))
    exp = count(records, CITY)
    oracle = Oracle(CITY).feed(events)
    assert sum(exp.types.values()) == len(oracle.seen)
    assert exp.duplicates == len(events) - len(oracle.seen)
    assert sum(exp.skipped.values()) == 1
    for key, figures in oracle.district_days().items():
        counted: dict[str, Any] = dict(exp.district[key])
        for field in ("refusals", "incidents", "visits", "unique_clients", "drug_checks"):
            assert counted.get(field, 0) == figures.get(field, 0), (key, field)
        for field in ("street_needles_kg", "sharps_returned_kg"):
            assert float(exp.kg[key].get(field, 0)) == figures.get(field, 0), (key, field)


@pytest.mark.integration
async def test_reconcile_finds_tampering_lag_and_missing_letters(fault_env: TestEnv) -> None:
    events = random_stream(seed=62, n=600, base=datetime.now(UTC))
    await produce(fault_env.bootstrap, fault_env.topic_prefix, events)
    async with serve(projection_app(fault_env.projection())):
        await wait_caught_up(fault_env.dsn, fault_env.bootstrap, fault_env.topic_prefix)
    clean = await reconcile(wait_s=0, base=fault_env.env())
    assert clean.code == 0, clean.out

    conn = await asyncpg.connect(fault_env.dsn)
    try:
        row = await conn.fetchrow(
            "SELECT district, day FROM district_daily WHERE refusals > 0 LIMIT 1"
        )
        assert row is not None
        district, day = row["district"], row["day"]
        await conn.execute(
            "UPDATE district_daily SET refusals = refusals + 1 WHERE district = $1 AND day = $2",
            district,
            day,
        )
        tampered = await reconcile(wait_s=0, base=fault_env.env())
        assert tampered.code == 1
        assert f"district_daily {district} {day} refusals: read model" in tampered.out
        await conn.execute(
            "UPDATE district_daily SET refusals = refusals - 1 WHERE district = $1 AND day = $2",
            district,
            day,
        )
    finally:
        await conn.close()

    # records the projection has not applied (it is not running): lag, unless --allow-lag
    more = random_stream(seed=63, n=50, base=datetime.now(UTC))
    await produce(fault_env.bootstrap, fault_env.topic_prefix, more)
    await produce_raw(fault_env.bootstrap, fault_env.topic("dcr.visits"), b"k", b"{bad", [])
    lagging = await reconcile(wait_s=0, base=fault_env.env())
    assert lagging.code == 1 and "not applied yet" in lagging.out
    allowed = await run_module("services.projection.reconcile", "--allow-lag", base=fault_env.env())
    assert allowed.code == 0, allowed.out

    # a skipped record without its dead letter (here: applied by a rebuild, which does not
    # publish letters again) is a difference; --no-deadletters ignores it
    rebuild = await run_module("services.projection.rebuild", base=fault_env.env())
    assert rebuild.code == 0, rebuild.err
    missing = await reconcile(wait_s=0, base=fault_env.env())
    assert missing.code == 1 and "dead letter missing" in missing.out
    ignored = await run_module(
        "services.projection.reconcile", "--no-deadletters", base=fault_env.env()
    )
    assert ignored.code == 0, ignored.out
