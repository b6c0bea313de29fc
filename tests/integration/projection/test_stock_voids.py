"""Issue 13, voids of stock reports through the real Kafka and PostgreSQL: a voided stock count,
delivery or distribution leaves the stock read model (counts and movements) exactly as if it had
never been reported, whether the void arrives after or before its target, and a rebuild
reproduces the live tables."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from harness.process import run_module
from services.projection.app import create_app as projection_app
from services.projection.store import READ_MODEL_TABLES
from shared.events import payloads as p
from shared.events.envelope import Envelope
from shared.events.vocabulary import SupplyItem, VoidReason
from tests.integration.projection.harness import produce, rows, snapshot, wait_caught_up
from tests.support import serve
from tests.unit.projection import factory as f
from tests.unit.projection.factory import CITY

if TYPE_CHECKING:
    from tests.support import TestEnv

pytestmark = pytest.mark.integration
TABLES = (*READ_MODEL_TABLES, "projection_offsets")
STOCK = ("stock_counts", "stock_movements")
S, N, FOIL = SupplyItem.SYRINGES, SupplyItem.NALOXONE_KITS, SupplyItem.FOIL


def local(day: date, hh: int) -> datetime:
    return datetime.combine(day, time(hh), tzinfo=CITY.zone)


def void(target: Envelope, at: datetime) -> Envelope:
    return f.wrap(p.ReportVoided(target_id=target.id, reason=VoidReason.MISTAKEN), at)


def reports(day: date) -> tuple[list[Envelope], list[Envelope]]:
    """(kept, voided): what stays reported, and the reports the room voids."""
    first = f.counted(local(day, 8), {S: 100, FOIL: 50})
    later = f.counted(local(day, 12), {S: 80, N: 5})  # naloxone counted only here
    delivery = f.delivered(local(day, 13), {S: 20})
    dispensing = f.dispensed(local(day, 14), {S: 10})
    wrong_dispensing = f.dispensed(local(day, 15), {S: 7})
    return [first, dispensing], [later, delivery, wrong_dispensing]


async def stock(env: TestEnv) -> dict[str, list[Any]]:
    """The stock read model without the movements' ids (equal for equal stock)."""
    counts = await rows(
        env.dsn, "SELECT facility, item, counted_at, quantity FROM stock_counts ORDER BY 1, 2"
    )
    moves = await rows(
        env.dsn, "SELECT facility, item, at, delta FROM stock_movements ORDER BY 1, 2, 3"
    )
    return {"counts": counts, "movements": moves}


async def rebuild_equals_live(env: TestEnv) -> None:
    live = await snapshot(env.dsn, TABLES)
    done = await run_module("services.projection.rebuild", base=env.env())
    assert done.code == 0, done.err
    assert await snapshot(env.dsn, TABLES) == live


@pytest.mark.parametrize("void_first", [False, True])
async def test_voided_stock_reports_leave_stock_as_if_never_reported(
    iso_env: TestEnv, void_first: bool
) -> None:
    day = datetime.now(CITY.zone).date() - timedelta(days=2)
    kept, voided = reports(day)
    voids = [void(e, local(day, 16)) for e in voided]
    async with serve(projection_app(iso_env.projection())):
        if void_first:
            await produce(iso_env.bootstrap, iso_env.topic_prefix, voids)
            await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        await produce(iso_env.bootstrap, iso_env.topic_prefix, [*kept, *voided])
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        if not void_first:
            reported = await stock(iso_env)
            assert ("halmtorv", "syringes", local(day, 12), 80) in reported["counts"]
            await produce(iso_env.bootstrap, iso_env.topic_prefix, voids)
            await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)

    got = await stock(iso_env)
    assert got == {  # the earlier count is the count again; the voided movements are gone
        "counts": [
            ("halmtorv", "foil", local(day, 8), 50),
            ("halmtorv", "syringes", local(day, 8), 100),
        ],
        "movements": [("halmtorv", "syringes", local(day, 14), -10)],
    }
    assert await rows(iso_env.dsn, "SELECT count(*) FROM stock_count_reports") == [(2,)]
    await rebuild_equals_live(iso_env)
    assert await stock(iso_env) == got
