"""The store's hot statements receive their rows as one JSON document each (issue 18): what
PostgreSQL keeps is exactly what the events said (instants with any offset, bytes, arrays,
NULLs, exact decimals), on the real database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from prometheus_client import REGISTRY

from services.projection import domain, store
from services.projection.erasure import erased_digest
from services.projection.rooms import room_changes
from services.projection.rooms_store import apply_room_changes
from shared.events.envelope import Envelope
from shared.events.payloads import VisitStarted
from shared.events.vocabulary import Route, Substance, SupplyItem
from tests.unit.projection import factory as f

pytestmark = pytest.mark.integration

CPH = ZoneInfo("Europe/Copenhagen")
#: Fixed instants around a DST change, in three different offsets (the store never compares
#: them with now).
SUMMER = datetime(2026, 3, 29, 3, 30, tzinfo=CPH)  # +02:00, just after the change
WINTER = datetime(2026, 3, 29, 1, 30, tzinfo=CPH)  # +01:00, just before it
ODD = datetime(2026, 3, 27, 12, 45, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))


def _decoded(*events: Envelope) -> list[domain.Decoded]:
    decoded, rejected = domain.decode_batch([f.record(e, i) for i, e in enumerate(events)], f.CITY)
    assert rejected == []
    return decoded


async def _apply(conn: asyncpg.Connection, decoded: list[domain.Decoded]) -> set[tuple[str, str]]:
    async with conn.transaction():
        new, _ = await store.claim_events(conn, decoded)
        await store.apply_changes(conn, domain.project_decoded(decoded, f.CITY))
    return new


async def test_the_claim_keeps_each_event_exactly(conn: asyncpg.Connection) -> None:
    erased = f.visit_started("v-erased", WINTER, client=7)
    kept = f.visit_started("v-kept", SUMMER, client=8)
    street = f.street_needles(ODD, count=3, weight_kg=0.25)  # "Skelbækgade": non-ASCII bytes
    data = erased.data
    assert isinstance(data, VisitStarted)
    await conn.execute(
        "INSERT INTO erased_pseudonyms (digest, erased_at) VALUES ($1, now())",
        erased_digest(data.pseudonym_key, data.client_pseudonym),
    )
    decoded = _decoded(erased, kept, street)

    new = await _apply(conn, decoded)
    again, voided = await store.claim_events(conn, decoded)  # a replay claims nothing

    assert new == {d.dedup_key for d in decoded}
    assert again == set()
    assert voided == set()
    # a batch with some claimed before: only the others are new; a claimed key named by a void
    # applied earlier is reported as voided
    later = f.refused(SUMMER)
    target = f.refused(WINTER)
    await conn.execute(
        """INSERT INTO projection_voids (source, target_id, void_id, reason, time)
           VALUES ($1, $2, gen_random_uuid(), 'duplicate', now())""",
        target.source,
        target.id,
    )
    mixed = _decoded(kept, later, target)
    new_now, voided_now = await store.claim_events(conn, mixed)
    assert new_now == {mixed[1].dedup_key, mixed[2].dedup_key}
    assert voided_now == {mixed[2].dedup_key}
    rows = {
        (r["source"], str(r["id"])): r for r in await conn.fetch("SELECT * FROM projection_events")
    }
    assert len(rows) == 5
    for d in decoded:
        row = rows[d.dedup_key]
        assert row["type"] == d.event.type
        assert row["time"] == d.event.time  # the same instant, whatever the offset
        assert row["schema_version"] == int(dict(d.record.headers)["ce_schemaversion"])
        if d.dedup_key == (erased.source, str(erased.id)):
            assert row["value"] is None  # an erased person's event: no copy of the pseudonym
        else:
            assert bytes(row["value"]) == d.record.value  # byte for byte


def _fallbacks() -> float:
    return REGISTRY.get_sample_value("dcr_projection_claim_fallbacks_total") or 0.0


async def test_an_optimistic_claim_that_meets_an_old_key_leaves_no_trace(
    conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim first inserts every key plainly (fast, no conflict handling); a key claimed
    before fails that attempt part-way, and the batch is claimed again with ON CONFLICT: each
    key ends up once, with its own value, and the answer is the same as without the attempt."""
    old = f.refused(WINTER)
    await _apply(conn, _decoded(old))
    voided_first = f.refused(SUMMER)  # its void was applied before the event itself arrives
    await conn.execute(
        """INSERT INTO projection_voids (source, target_id, void_id, reason, time)
           VALUES ($1, $2, gen_random_uuid(), 'duplicate', now())""",
        voided_first.source,
        voided_first.id,
    )
    fresh = [f.visit_started(f"v-{i}", SUMMER, client=i) for i in range(40)]
    monkeypatch.setattr(store, "OPTIMISTIC_MIN_ROWS", 2)  # these small batches take the path

    before = _fallbacks()
    all_new = _decoded(*fresh[:20], voided_first)
    async with conn.transaction():
        new, voided = await store.claim_events(conn, all_new)
    assert new == {d.dedup_key for d in all_new}
    assert voided == {all_new[-1].dedup_key}  # found by the plain insert too
    assert _fallbacks() == before  # all new: the fast path held

    # one key claimed before: the plain insert fails (after storing the keys sorted before it)
    mixed = _decoded(*fresh[20:], old)
    async with conn.transaction():
        new_now, voided_now = await store.claim_events(conn, mixed)
    assert new_now == {d.dedup_key for d in mixed[:-1]}
    assert voided_now == set()
    assert _fallbacks() == before + 1

    # a batch smaller than the threshold goes straight to ON CONFLICT (no savepoint)
    monkeypatch.setattr(store, "OPTIMISTIC_MIN_ROWS", 3)
    small = _decoded(old, f.refused(SUMMER))
    async with conn.transaction():
        new_small, _ = await store.claim_events(conn, small)
    assert new_small == {small[1].dedup_key}
    assert _fallbacks() == before + 1  # unchanged: no attempt

    rows = await conn.fetch("SELECT source, id::text AS id, value FROM projection_events")
    keys = [(r["source"], r["id"]) for r in rows]
    assert len(keys) == len(set(keys)) == 1 + 21 + 20 + 1
    by_key = {(r["source"], r["id"]): r["value"] for r in rows}
    for d in [*all_new, *mixed]:
        assert bytes(by_key[d.dedup_key]) == d.record.value


def _visit_fallbacks() -> float:
    return REGISTRY.get_sample_value("dcr_projection_visit_fallbacks_total") or 0.0


async def _write_visits(
    conn: asyncpg.Connection, events: list[Envelope], known: frozenset[tuple[str, str]] | None
) -> None:
    """Apply ``events``' visit changes with their arguments built as the projector builds them
    (``known``: the rows without a start it knows of; None: no optimistic attempt)."""
    changes = domain.project_decoded(_decoded(*events), f.CITY)
    async with conn.transaction():
        await store.apply_changes(conn, changes, prepared=store.change_arguments(changes, known))


async def _visit_rows(conn: asyncpg.Connection) -> dict[str, tuple[object, ...]]:
    rows = await conn.fetch(
        "SELECT visit_id, day, start_time, end_time, client_pseudonym, route FROM visits"
    )
    return {r["visit_id"]: tuple(r.values())[1:] for r in rows}


async def test_optimistic_visit_starts_meet_a_stored_row_and_leave_no_trace(
    conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The starts of a batch that no earlier batch left a row for are inserted plainly; a start
    that does meet a stored row (its end reported first, in an earlier batch the hint does not
    know of) fails that attempt, and every start is upserted instead: each visit ends up once,
    first start and earliest end winning, the figures of its day recomputed, the same as
    without the attempt. A start the hint names is upserted at once (no failed attempt)."""
    monkeypatch.setattr(store, "OPTIMISTIC_MIN_ROWS", 2)  # these small batches take the path
    end_first = f.visit_ended("v-end-first", SUMMER + timedelta(minutes=30))
    await _write_visits(conn, [end_first], frozenset())
    before = _visit_fallbacks()

    # all new: the plain insert holds
    new = [f.visit_started(f"v-{i}", SUMMER, client=i) for i in range(3)]
    await _write_visits(
        conn, [*new, f.visit_ended("v-0", SUMMER + timedelta(minutes=9))], frozenset()
    )
    assert _visit_fallbacks() == before

    # its end came first, unknown to the hint: the attempt fails, every start is upserted
    late = f.visit_started("v-end-first", SUMMER, client=7)
    more = [f.visit_started(f"v-{i}", SUMMER, client=i) for i in range(3, 5)]
    await _write_visits(conn, [late, *more], frozenset())
    assert _visit_fallbacks() == before + 1

    # named by the hint: upserted directly, no failed attempt
    end_again = f.visit_ended("v-hinted", SUMMER + timedelta(minutes=20))
    await _write_visits(conn, [end_again], frozenset())
    hinted = f.visit_started("v-hinted", SUMMER, client=8)
    others = [f.visit_started(f"v-{i}", SUMMER, client=i) for i in range(5, 7)]
    known = frozenset({("halmtorv", "v-hinted")})
    await _write_visits(conn, [hinted, *others], known)
    assert _visit_fallbacks() == before + 1

    # and a start meeting its own earlier start (a second report of it): first start wins
    again = f.visit_started("v-1", SUMMER + timedelta(minutes=1), client=99)
    await _write_visits(
        conn, [again, *[f.visit_started(f"v-{i}", SUMMER, client=i) for i in (7, 8)]], frozenset()
    )
    assert _visit_fallbacks() == before + 2

    rows = await _visit_rows(conn)
    assert len(rows) == 1 + 9 + 1
    pseudonym = {r[3] for k, r in rows.items() if k == "v-1"}
    assert pseudonym == {f.pseudonym(1)}  # the first start's
    assert rows["v-end-first"][1:3] == (SUMMER, SUMMER + timedelta(minutes=30))
    assert rows["v-hinted"][1:3] == (SUMMER, SUMMER + timedelta(minutes=20))
    assert rows["v-0"][2] == SUMMER + timedelta(minutes=9)
    # the same rows as applying the same batches with no optimistic attempt at all
    await conn.execute("TRUNCATE visits")
    for batch in (
        [end_first],
        [*new, f.visit_ended("v-0", SUMMER + timedelta(minutes=9))],
        [late, *more],
        [end_again],
        [hinted, *others],
        [again, *[f.visit_started(f"v-{i}", SUMMER, client=i) for i in (7, 8)]],
    ):
        await _write_visits(conn, batch, None)
    assert await _visit_rows(conn) == rows
    assert _visit_fallbacks() == before + 2  # no attempt without a hint


async def test_visits_keep_their_instants_arrays_and_nulls(conn: asyncpg.Connection) -> None:
    both = f.visit_started(
        "v-both",
        WINTER,
        client=1,
        route=Route.SMOKE,
        substances=(Substance.HEROIN, Substance.COCAINE),
        first=True,
    )
    both_end = f.visit_ended("v-both", SUMMER)
    open_visit = f.visit_started("v-open", ODD, client=2, assisted=True)
    end_only = f.visit_ended("v-end-first", SUMMER + timedelta(minutes=5))

    async with conn.transaction():
        changes = domain.project_decoded(_decoded(both, both_end, open_visit, end_only), f.CITY)
        await store.apply_changes(conn, changes)

    rows = {r["visit_id"]: r for r in await conn.fetch("SELECT * FROM visits")}
    assert rows["v-both"]["start_time"] == WINTER
    assert rows["v-both"]["end_time"] == SUMMER
    assert rows["v-both"]["day"] == WINTER.date()
    assert rows["v-both"]["substances"] == ["cocaine", "heroin"]  # as the domain orders them
    assert rows["v-both"]["route"] == "smoke"
    assert rows["v-both"]["first_visit"] is True
    assert rows["v-both"]["assisted_injection"] is False
    assert rows["v-open"]["start_time"] == ODD
    assert rows["v-open"]["day"] == ODD.astimezone(CPH).date()
    assert rows["v-open"]["substances"] == ["heroin"]
    assert rows["v-open"]["end_time"] is None
    assert rows["v-end-first"]["start_time"] is None  # an end alone: no start facts yet
    assert rows["v-end-first"]["day"] is None
    assert rows["v-end-first"]["end_time"] == SUMMER + timedelta(minutes=5)
    # the days the batch touched were recomputed (visits started, completed), per district
    # and per room
    odd_day = ODD.astimezone(CPH).date()
    assert await _figures(conn) == {WINTER.date(): (1, 1), odd_day: (1, 0)}

    # its start arriving later fills the row; an earlier end moves it, a later one does not
    late_start = f.visit_started("v-end-first", SUMMER, client=3)
    earlier_end = f.visit_ended("v-both", SUMMER - timedelta(minutes=1))
    later_end = f.visit_ended("v-end-first", SUMMER + timedelta(hours=1))
    # and a new visit beside it: both written
    new_visit = f.visit_started("v-new", WINTER, client=4)
    async with conn.transaction():
        changes = domain.project_decoded(
            _decoded(late_start, earlier_end, later_end, new_visit), f.CITY
        )
        await store.apply_changes(conn, changes)
    rows = {r["visit_id"]: r for r in await conn.fetch("SELECT * FROM visits")}
    assert len(rows) == 4
    assert rows["v-new"]["start_time"] == WINTER
    assert rows["v-end-first"]["start_time"] == SUMMER
    assert rows["v-end-first"]["end_time"] == SUMMER + timedelta(minutes=5)
    assert rows["v-both"]["end_time"] == SUMMER - timedelta(minutes=1)
    assert await _figures(conn) == {WINTER.date(): (3, 2), odd_day: (1, 0)}


async def _figures(conn: asyncpg.Connection) -> dict[object, tuple[int, int]]:
    """(visits, visits completed) per day, the same in district_daily and facility_daily."""
    district = {
        r["day"]: (r["visits"], r["visits_completed"])
        for r in await conn.fetch("SELECT day, visits, visits_completed FROM district_daily")
    }
    facility = await conn.fetch("SELECT day, visits FROM facility_daily")
    assert {r["day"]: r["visits"] for r in facility} == {d: v for d, (v, _) in district.items()}
    return district


async def test_city_days_follow_their_visits_and_a_day_left_without_any_loses_its_row(
    conn: asyncpg.Connection,
) -> None:
    # the city's figures come from one statement (an upsert of the days with visits, a delete
    # of the others): retracting visits updates a day that keeps some, removes one left empty
    winter_day, odd_day = WINTER.date(), ODD.astimezone(CPH).date()
    a = f.visit_started("v-a", WINTER, client=1)
    b = f.visit_started("v-b", WINTER + timedelta(minutes=10), client=2)
    c = f.visit_started("v-c", ODD, client=1)
    decoded = _decoded(a, b, c, f.visit_ended("v-a", WINTER + timedelta(minutes=30)))
    await _apply(conn, decoded)
    assert await _city(conn) == {winter_day: (2, Decimal("30.00")), odd_day: (1, None)}

    async with conn.transaction():
        gone = [decoded[1].event, decoded[2].event]  # v-b and v-c
        await store.retract(conn, domain.retraction(gone, f.CITY))
    assert await _city(conn) == {winter_day: (1, Decimal("30.00"))}


async def _city(conn: asyncpg.Connection) -> dict[object, tuple[int, Decimal | None]]:
    """city_daily: day -> (distinct clients, median minutes)."""
    rows = await conn.fetch("SELECT day, unique_clients, visit_minutes_median FROM city_daily")
    return {r["day"]: (r["unique_clients"], r["visit_minutes_median"]) for r in rows}


async def test_stock_alerts_and_room_amounts_are_exact(conn: asyncpg.Connection) -> None:
    delivered = f.delivered(ODD, {SupplyItem.NEEDLES: 500, SupplyItem.FOIL: 20})
    dispensed = f.dispensed(SUMMER, {SupplyItem.NEEDLES: 3})
    counted = f.counted(WINTER, {SupplyItem.SWABS: 40})
    weights = [f.sharps(WINTER + timedelta(minutes=i), count=1, weight_kg=0.1) for i in range(3)]
    alert = f.alert(ODD, "vesterbro/e1")
    decoded = _decoded(delivered, dispensed, counted, *weights, alert)
    async with conn.transaction():
        await store.claim_events(conn, decoded)
        await store.apply_changes(conn, domain.project_decoded(decoded, f.CITY))
        await apply_room_changes(conn, room_changes(decoded))

    moves = {
        (r["item"], r["delta"]): r["at"]
        for r in await conn.fetch("SELECT item, delta, at FROM stock_movements")
    }
    assert moves == {("needles", 500): ODD, ("foil", 20): ODD, ("needles", -3): SUMMER}
    kg = await conn.fetchval(
        "SELECT amount FROM room_daily WHERE measure = 'sharps_returned_kg' AND facility = $1",
        "halmtorv",
    )
    assert kg == Decimal("0.3")  # three times 0.1 kg, exactly (not 0.30000000000000004)
    assert str(kg) == "0.3"
    report = await conn.fetchrow("SELECT * FROM stock_count_reports")
    assert report is not None
    assert (report["item"], report["quantity"], report["counted_at"]) == ("swabs", 40, WINTER)
    assert str(report["id"]) == str(counted.id)
    raised = await conn.fetchrow("SELECT * FROM alerts")
    assert raised is not None
    assert raised["raised_at"] == ODD
    assert (raised["episode"], raised["district"], raised["substance"]) == (
        "vesterbro/e1",
        "vesterbro",
        "fentanyl",
    )
    assert raised["facility_id"] is None  # a JSON null is a NULL
    assert raised["overdoses_in_window"] is None
    assert raised["late"] is False


def _stock_fallbacks() -> float:
    return REGISTRY.get_sample_value("dcr_projection_stock_fallbacks_total") or 0.0


async def test_optimistic_stock_movements_meet_a_stored_one_and_leave_no_trace(
    conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's stock movements are inserted plainly (every movement of a newly claimed event
    is new); one that does meet a stored movement fails that attempt, and the batch's additive
    writes run again with ``ON CONFLICT DO NOTHING``: the stored movement stays as it was (first
    wins) and the day's sums are added once, not twice."""
    monkeypatch.setattr(store, "OPTIMISTIC_MIN_ROWS", 2)  # these small batches take the path
    first = [f.dispensed(SUMMER + timedelta(minutes=i), {SupplyItem.NEEDLES: 2}) for i in range(2)]
    before = _stock_fallbacks()
    await _apply(conn, _decoded(*first))
    assert _stock_fallbacks() == before  # all new: the plain insert held

    # the same movement again (written directly: the claim never lets an applied event
    # through), beside new ones: the attempt fails, the writes run again with ON CONFLICT
    again = _decoded(first[0], f.dispensed(SUMMER + timedelta(minutes=5), {SupplyItem.FOIL: 3}))
    changes = domain.project_decoded(again, f.CITY)
    async with conn.transaction():
        await store.apply_changes(conn, changes, prepared=store.change_arguments(changes))
    assert _stock_fallbacks() == before + 1

    moves = sorted(
        (r["item"], r["delta"]) for r in await conn.fetch("SELECT item, delta FROM stock_movements")
    )
    assert moves == [("foil", -3), ("needles", -2), ("needles", -2)]
    dispensed = await conn.fetchval(
        "SELECT sum(supplies_dispensed) FROM district_daily WHERE day = $1", SUMMER.date()
    )
    assert dispensed == 2 + 2 + (2 + 3)  # the retried batch's sums once, not twice
