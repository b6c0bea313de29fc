"""Small-cell suppression with an LP audit: primary cells, complements chosen until every hidden
cell's derivable range is at least the threshold wide, nested groups, weeks against days."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.projection.figures import empty_day, sum_days, to_json
from services.projection.public import SECONDS, decide, sum_tables
from services.projection.release_periods import Period, PeriodKind
from services.projection.suppression import (
    CITY,
    Cell,
    Relation,
    audit,
    period_relations,
    plan,
    public_table,
    table_cells,
)
from shared.events.vocabulary import OVERDOSE_KINDS

DISTRICTS = ["vesterbro", "nordvest", "sydhavn", "amager"]
NOW = datetime(2030, 1, 1, tzinfo=UTC)  # only stamped on releases; decisions never read it


def test_primary_cells_are_hidden_and_a_lone_one_takes_a_complement() -> None:
    values: dict[Cell, int] = {("p", "t", "T"): 30, ("p", "t", "a"): 3, ("p", "t", "b"): 27}
    rel = [Relation(("p", "t", "T"), (("p", "t", "a"), ("p", "t", "b")))]
    d = plan("p", values, set(), rel, threshold=5)
    assert ("p", "t", "a") in d.hidden  # primary
    # a alone would be 30 - 27: b (or T) must be hidden too, and then a ranges 1..29
    assert len(d.hidden) >= 2
    ranges = audit(values, set(d.hidden), rel)
    assert all(r.width >= 5 for r in ranges.values()), ranges


def test_two_hidden_small_cells_in_a_small_total_are_still_not_protected() -> None:
    # T = 6 = a(2) + b(4): both hidden, but a+b = 6 and each >= 1 gives a in [2, 5]... width 3
    values: dict[Cell, int] = {("p", "t", "T"): 6, ("p", "t", "a"): 2, ("p", "t", "b"): 4}
    rel = [Relation(("p", "t", "T"), (("p", "t", "a"), ("p", "t", "b")))]
    assert audit(values, {("p", "t", "a"), ("p", "t", "b")}, rel)[("p", "t", "a")].width < 5
    d = plan("p", values, set(), rel, threshold=5)
    assert ("p", "t", "T") in d.hidden  # so the total goes too
    assert all(r.width >= 5 for r in audit(values, set(d.hidden), rel).values())


def _day(rng: random.Random, small: bool) -> dict[str, Any]:
    day = empty_day()
    pick = [0, 0, 1, 2, 3] if small else [0, 1, 2, 6, 9, 30]
    for name in ("visits_by_route", "refusals_by_reason", "referrals_by_kind", "services_by_kind"):
        for k in day[name]:
            day[name][k] = rng.choice(pick)
    day["visits"] = sum(day["visits_by_route"].values())
    day["refusals"] = sum(day["refusals_by_reason"].values())
    day["referrals"] = sum(day["referrals_by_kind"].values())
    day["services"] = sum(day["services_by_kind"].values())
    outcomes = list(day["incidents_by_outcome"])
    for k in day["incidents_by_kind"]:
        n = rng.choice([0, 0, 0, 1, 2])
        day["incidents_by_kind"][k] = n
        for _ in range(n):
            day["incidents_by_outcome"][rng.choice(outcomes)] += 1
    day["incidents"] = sum(day["incidents_by_kind"].values())
    day["overdoses"] = sum(day["incidents_by_kind"][k.value] for k in OVERDOSE_KINDS)
    day["deaths"] = day["incidents_by_outcome"]["died"]
    day["hospital_transfers"] = day["incidents_by_outcome"]["transferred_to_hospital"]
    for f in ("unique_clients", "new_clients", "visits_completed", "naloxone_doses"):
        day[f] = rng.choice(pick)
    return day


def _tables(rng: random.Random) -> dict[str, dict[str, Any]]:
    per = {d: _day(rng, small=d in ("amager", "sydhavn")) for d in DISTRICTS}
    city = sum_days(per.values())
    return {t: {**to_json(v), SECONDS: float(v[SECONDS])} for t, v in ((CITY, city), *per.items())}


@pytest.mark.parametrize("seed", range(3))
def test_a_day_hides_every_small_count_and_no_hidden_cell_is_narrower_than_the_threshold(
    seed: int,
) -> None:
    rng = random.Random(seed)
    day = Period(PeriodKind.DAY, date(2030, 3, 4 + seed))
    tables = _tables(rng)
    release = decide(day, tables, [], DISTRICTS, threshold=5, now=NOW)
    cells = release.cells()
    hidden = release.hidden_cells()
    assert {c for c, v in cells.items() if 0 < v < 5} <= hidden
    ranges = audit(cells, hidden, period_relations(day.name, DISTRICTS, daily=True))
    narrow = {c: r for c, r in ranges.items() if r.width < 5}
    assert narrow == {}
    published = release.public(DISTRICTS)["tables"]
    for _, t, f in hidden:
        name = "city" if t == CITY else t
        value = published[name][f.split(".")[0]]
        assert (value[f.split(".")[1]] if "." in f else value) is None


def test_a_week_is_audited_with_its_released_days() -> None:
    rng = random.Random(7)
    week = Period.of(PeriodKind.WEEK, date(2030, 3, 4))
    days = [decide(d, _tables(rng), [], DISTRICTS, 5, NOW) for d in week.days()]
    tables = {t: sum_tables([d.tables[t] for d in days]) for t in (CITY, *DISTRICTS)}
    release = decide(week, tables, days, DISTRICTS, 5, NOW)
    # the audit over the days, the week and the week = sum(days) relations, recomputed here
    from services.projection.suppression import time_relations

    values = release.cells()
    hidden = release.hidden_cells()
    relations = period_relations(week.name, DISTRICTS, daily=False)
    relations += time_relations(week.name, [d.period.name for d in days], DISTRICTS)
    for d in days:
        values.update(d.cells())
        hidden |= d.hidden_cells()
        relations += period_relations(d.period.name, DISTRICTS, daily=True)
    ranges = audit(values, hidden, relations, width=5)  # proven wide enough, not exact
    # a hidden cell is at least 5 wide, or the reader computes it exactly and it is no small
    # count (a released day's hidden zero that the week's shown sum gives away tells nothing)
    narrow = {c: r for c, r in ranges.items() if r.width < 5}
    assert ranges and all(r.low == r.high == values[c] and not 0 < values[c] < 5
                          for c, r in narrow.items()), narrow  # fmt: skip
    assert not any(c[0] == week.name for c in narrow), "the week shows what it cannot hide"
    # the week publishes (its days' small counts do not force it to be withheld)
    assert not release.withheld and len(release.hidden) < len(release.cells())


def test_minutes_are_hidden_for_few_completed_visits_and_things_are_shown() -> None:
    day = empty_day()
    day.update(visits_completed=3, visit_minutes_median=20, visit_minutes_mean=25)
    day.update(supplies_dispensed=3, street_needles_count=2)
    day["supplies_by_item"]["foil"] = 3
    out = public_table("day:x", "vesterbro", to_json(day), set(), 5, daily=True)
    assert out["visit_minutes_median"] is None and out["visit_minutes_mean"] is None
    assert out["supplies_by_item"]["foil"] == 3 and out["street_needles_count"] == 2


def test_table_cells_name_every_breakdown_key() -> None:
    cells = table_cells("day:x", "vesterbro", to_json(empty_day()), daily=False)
    assert ("day:x", "vesterbro", "visits_by_route.inject") in cells
    assert ("day:x", "vesterbro", "unique_clients") not in cells  # does not add up over days


def test_a_week_shows_what_its_shown_days_give_away_and_hides_what_would_expose_a_day() -> None:
    # two released days: x shown on both (7, 8); y small (2) and hidden on day 1, 6 on day 2
    d1, d2, w = "day:1", "day:2", "week:1"
    values: dict[Cell, int] = {
        (d1, "t", "x"): 7, (d2, "t", "x"): 8, (w, "t", "x"): 15,
        (d1, "t", "y"): 2, (d2, "t", "y"): 6, (w, "t", "y"): 8,
        (d1, "t", "z"): 2, (d2, "t", "z"): 3, (w, "t", "z"): 5,
    }  # fmt: skip
    released_hidden: set[Cell] = {(d1, "t", "y"), (d1, "t", "z"), (d2, "t", "z")}
    relations = [Relation((w, "t", f), ((d1, "t", f), (d2, "t", f))) for f in ("x", "y", "z")]
    d = plan(w, values, released_hidden, relations, threshold=5)
    assert not d.withheld
    # x: 7 + 8 is public anyway (shown); y: 8 - 6 would give day 1's 2 away (hidden);
    # z = 5: its days are hidden (2 and 3) and it is no small count, but showing it would pin
    # them to 1..4: hidden too
    assert d.hidden == {(w, "t", "y"), (w, "t", "z")}
    ranges = audit(values, released_hidden | d.hidden, relations)
    assert all(r.width >= 5 for r in ranges.values()), ranges
