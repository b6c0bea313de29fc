"""The audit's bookkeeping, pinned down (found by mutation testing, docs/mutation-report.md):
hidden cells linked through relations are solved together, a relation of hidden cells only
still bounds them, ``only`` audits just the components of the periods asked for, and a
breakdown key missing from stored figures (a release frozen before the key existed) counts 0."""

from __future__ import annotations

import math

import pytest

from services.projection.figures import empty_day, to_json
from services.projection.suppression import (
    UNBOUNDED,
    Cell,
    Range,
    Relation,
    _determined,
    _integral,
    audit,
    plan,
    table_cells,
)


def rel(period: str, total: str, *members: str) -> Relation:
    return Relation((period, "t", total), tuple((period, "t", m) for m in members))


def vals(period: str, **counts: int) -> dict[Cell, int]:
    return {(period, "t", k): v for k, v in counts.items()}


def test_hidden_cells_linked_through_relations_are_bounded_together() -> None:
    # 5 = a + b and 7 = b + c with a, b, c hidden: b <= 4 through the first relation, so c >= 3
    values = vals("p", T1=5, a=2, b=3, T2=7, c=4)
    hidden = {("p", "t", x) for x in "abc"}
    ranges = audit(values, hidden, [rel("p", "T1", "a", "b"), rel("p", "T2", "b", "c")])
    assert ranges == {
        ("p", "t", "a"): Range(1, 4),
        ("p", "t", "b"): Range(1, 4),
        ("p", "t", "c"): Range(3, 6),
    }


def test_a_relation_of_hidden_cells_only_still_counts() -> None:
    # T = a + b, all three hidden: each is bounded below only, and still gets its range (a
    # range for every hidden cell that appears in a relation)
    values = vals("p", T=5, a=2, b=3)
    hidden = {("p", "t", x) for x in ("T", "a", "b")}
    ranges = audit(values, hidden, [rel("p", "T", "a", "b")])
    assert ranges == {
        ("p", "t", "T"): Range(2, math.inf),
        ("p", "t", "a"): Range(1, math.inf),
        ("p", "t", "b"): Range(1, math.inf),
    }


def test_only_the_components_of_the_periods_asked_for_are_audited() -> None:
    # two independent components: a released day's (listed first) and the new week's
    values = {**vals("day", T=5, a=2, b=3), **vals("week", T=10, a=4, b=6)}
    hidden = {(p, "t", x) for p in ("day", "week") for x in "ab"}
    relations = [rel("day", "T", "a", "b"), rel("week", "T", "a", "b")]
    assert audit(values, hidden, relations, only={"week"}) == {
        ("week", "t", "a"): Range(1, 9),
        ("week", "t", "b"): Range(1, 9),
    }
    assert len(audit(values, hidden, relations)) == 4  # without only: both


def test_a_breakdown_key_missing_from_stored_figures_counts_zero() -> None:
    day = to_json(empty_day())
    day["visits_by_route"] = {"smoke": 4}  # frozen before the other routes were recorded
    day["visits"] = 4
    cells = table_cells("day:2030-03-04", "vesterbro", day, daily=True)
    assert cells[("day:2030-03-04", "vesterbro", "visits_by_route.smoke")] == 4
    assert cells[("day:2030-03-04", "vesterbro", "visits_by_route.inject")] == 0
    assert cells[("day:2030-03-04", "vesterbro", "visits")] == 4


def test_elimination_finds_every_cell_a_chain_of_single_unknowns_gives() -> None:
    # g alone in X = g + t; a alone in two relations; once a is known, U = a + b gives b;
    # V = b + c + d and W = e + f keep two unknowns each
    relations = [
        rel("p", "X", "g", "t"),
        rel("p", "T", "a", "s"),
        rel("p", "T2", "a", "s2"),
        rel("p", "U", "a", "b"),
        rel("p", "V", "b", "c", "d"),
        rel("p", "W", "e", "f"),
    ]
    hidden = {("p", "t", x) for x in "abcdefg"}
    assert _determined(hidden, relations) == {("p", "t", x) for x in "gab"}
    assert _determined(set(), relations) == set()


def test_ranges_already_seen_wide_enough_are_answered_without_solving() -> None:
    values = vals("p", T=10, a=4, b=6)
    hidden = {("p", "t", "a"), ("p", "t", "b")}
    relations = [rel("p", "T", "a", "b")]
    seen = {("p", "t", "a"): Range(2, 8), ("p", "t", "b"): Range(2, 8)}  # truth: 1..9
    assert audit(values, hidden, relations, width=5, seen=dict(seen)) == seen
    # seen one short of the width: solved, and found as wide as the relation allows
    short = {("p", "t", "a"): Range(2, 6), ("p", "t", "b"): Range(4, 8)}
    ranges = audit(values, hidden, relations, width=5, seen=dict(short))
    assert all(r.width >= 5 for r in ranges.values()), ranges
    assert audit(values, hidden, relations) == {
        ("p", "t", "a"): Range(1, 9),
        ("p", "t", "b"): Range(1, 9),
    }


def test_counts_are_rounded_inward_and_the_lp_ceiling_means_unbounded() -> None:
    assert _integral(4.5) == 4.0 and _integral(4.5, up=True) == 5.0  # inward: never wider
    assert _integral(4.9999999) == 5.0 and _integral(5.0000001, up=True) == 5.0  # solver noise
    assert _integral(UNBOUNDED) == math.inf and _integral(UNBOUNDED - 1) == math.inf
    assert _integral(UNBOUNDED - 1.5) == UNBOUNDED - 2


def test_relations_the_counts_cannot_satisfy_are_an_error_naming_it() -> None:
    # 1 = a + b with a and b not zero: no table fits what would be published
    values = vals("p", T=1, a=2, b=3)
    with pytest.raises(ValueError, match="the published relations are inconsistent"):
        audit(values, {("p", "t", "a"), ("p", "t", "b")}, [rel("p", "T", "a", "b")])


def test_a_count_equal_to_the_threshold_is_not_small() -> None:
    values = vals("p", T=10, a=5, b=5)
    decision = plan("p", values, set(), [rel("p", "T", "a", "b")], threshold=5)
    assert decision.hidden == frozenset()
    assert decision.withheld is False  # published as JSON false, not null


def test_a_period_whose_small_count_nothing_can_protect_is_withheld_whole() -> None:
    # a (2) is the released T minus the released b: exact whatever the week hides, and no cell
    # of the week shares a relation with it. c and d (6 each) stand apart: all is withheld.
    values = {("day", "t", "T"): 9, ("day", "t", "b"): 7, ("day", "t", "V"): 12}
    values |= vals("week", a=2, c=6, d=6)
    relations = [
        Relation(("day", "t", "T"), (("week", "t", "a"), ("day", "t", "b"))),
        Relation(("day", "t", "V"), (("week", "t", "c"), ("week", "t", "d"))),
    ]
    decision = plan("week", values, set(), relations, threshold=5)
    assert decision.withheld is True
    assert decision.hidden == {("week", "t", x) for x in "acd"}
