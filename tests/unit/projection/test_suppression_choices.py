"""What suppression hides besides the small counts, pinned down (found by mutation testing,
docs/mutation-report.md): the complement a weak hidden cell takes is the nearest shown cell,
smallest non-zero first, so the public view loses as little as possible; and a week's or
month's public table carries no figure that does not add up over days.

The complement search (``_complement``) is tested on small hand-made relation graphs: which
cell it picks changes no privacy guarantee (the audit decides whether the result is safe) but
how much the public loses, and how many audit rounds a release takes."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable

from services.projection.figures import empty_day, to_json
from services.projection.suppression import Cell, Relation, _complement, public_table

P, T = "week:2030-W10", "vesterbro"


def cell(name: str) -> Cell:
    return (P, T, name)


def graph(*relations: tuple[str, ...]) -> Callable[[Cell], frozenset[Cell]]:
    """The neighbours function ``plan`` builds: every cell sharing a relation with a cell
    (itself included). Each relation is given as (total, member, member...)."""
    rels = [Relation(cell(total), tuple(cell(m) for m in members)) for total, *members in relations]
    by_cell: dict[Cell, list[Relation]] = defaultdict(list)
    for r in rels:
        for c in (r.total, *r.members):
            by_cell[c].append(r)

    @functools.cache
    def neighbours(c: Cell) -> frozenset[Cell]:
        return frozenset(m for r in by_cell[c] for m in (r.total, *r.members))

    return neighbours


def cells(*names: str) -> set[Cell]:
    return {cell(n) for n in names}


def pick(
    weak: str,
    neighbours: Callable[[Cell], frozenset[Cell]],
    hidden: set[Cell],
    allowed: set[Cell],
    values: dict[str, int],
    explored: set[Cell] | None = None,
) -> str | None:
    got = _complement(
        cell(weak),
        neighbours,
        hidden,
        allowed,
        {cell(k): v for k, v in values.items()},
        set() if explored is None else explored,
    )
    return None if got is None else got[2]


def test_the_complement_is_the_smallest_non_zero_shown_cell_of_the_weak_cells_relations() -> None:
    # T = a + z + m + b: a is weak; z is zero, m is 6, b is 40, the total 49
    nb = graph(("T", "a", "z", "m", "b"))
    values = {"T": 49, "a": 3, "z": 0, "m": 6, "b": 40}
    assert pick("a", nb, cells("a"), cells("T", "a", "z", "m", "b"), values) == "m"
    # a zero only when nothing else is left: it tells a reader least but protects least
    assert pick("a", nb, cells("a", "m", "b", "T"), cells("T", "a", "z", "m", "b"), values) == "z"


def test_a_count_of_one_is_smallest_and_ties_go_to_the_first_name() -> None:
    nb = graph(("T", "a", "one", "x", "w"))
    values = {"T": 20, "a": 2, "one": 1, "x": 1, "w": 16}
    assert pick("a", nb, cells("a"), cells("T", "a", "one", "x", "w"), values) == "one"


def test_only_cells_the_period_may_hide_are_candidates() -> None:
    # m (smaller) belongs to a released period: it cannot be hidden now, b is taken instead
    nb = graph(("T", "a", "m", "b"))
    values = {"T": 49, "a": 3, "m": 6, "b": 40}
    assert pick("a", nb, cells("a"), cells("T", "a", "b"), values) == "b"


def test_the_nearest_shown_cell_wins_over_a_smaller_one_further_away() -> None:
    # a's own relation offers T (50); through the hidden h the smaller s (6) is one step further
    nb = graph(("T", "a", "h"), ("U", "h", "s", "big"))
    values = {"T": 50, "a": 3, "h": 47, "U": 60, "s": 6, "big": 7}
    everything = cells("T", "a", "h", "U", "s", "big")
    assert pick("a", nb, cells("a", "h"), everything, values) == "T"


def test_the_search_goes_on_through_hidden_cells_only() -> None:
    # a's relation is all hidden but for r, a released (shown, fixed) cell: the search passes
    # through the hidden h to reach s; it never passes through r to reach q
    nb = graph(("T", "a", "h", "r"), ("U", "h", "s"), ("V", "r", "q"))
    values = {"T": 20, "a": 3, "h": 7, "r": 10, "U": 30, "s": 23, "V": 12, "q": 2}
    allowed = cells("a", "h", "U", "s", "q")
    explored: set[Cell] = set()
    assert pick("a", nb, cells("T", "a", "h", "U"), allowed, values, explored) == "s"
    assert explored == cells("a", "h", "T")  # the hidden cells it passed (the weak one too)
    # with s taken away, q (behind the shown r) is not reached: nothing local helps
    explored = set()
    assert pick("a", nb, cells("T", "a", "h", "U", "s"), allowed, values, explored) is None
    assert explored == cells("a", "h", "T", "U", "s")


def test_every_hidden_cell_at_the_same_distance_is_searched() -> None:
    # a's relation holds only hidden cells; behind each one lies one shown cell: the smallest
    # of them is taken, whichever hidden cell leads to it. Many namings, so that no order of
    # iterating the hidden cells happens to give the right answer by chance.
    for i in range(24):
        h1, h2, h3 = f"h1_{i}", f"h2_{i}", f"h3_{i}"
        nb = graph(
            ("T", "a", h1, h2, h3), (f"U1_{i}", h1, "s1"), (f"U2_{i}", h2, "s2"),
            (f"U3_{i}", h3, "s3"),
        )  # fmt: skip
        small = ("s1", "s2", "s3")[i % 3]
        values = {"T": 60, "a": 3, h1: 9, h2: 9, h3: 9, "s1": 30, "s2": 30, "s3": 30, small: 8}
        values.update({f"U1_{i}": 39, f"U2_{i}": 39, f"U3_{i}": 39})
        hidden = cells("T", "a", h1, h2, h3, f"U1_{i}", f"U2_{i}", f"U3_{i}")
        assert pick("a", nb, hidden, cells("s1", "s2", "s3"), values) == small, i


def test_a_search_that_meets_an_earlier_searchs_hidden_cells_defers_to_it() -> None:
    # a and b are both weak; each reaches the shown s only through the hidden h
    nb = graph(("T", "a", "h"), ("U", "h", "b"), ("V", "h", "s"))
    values = {"T": 10, "a": 3, "h": 7, "U": 9, "b": 2, "V": 28, "s": 21}
    hidden = cells("T", "a", "h", "U", "b")
    explored: set[Cell] = set()
    assert pick("a", nb, hidden, cells("s"), values, explored) == "s"
    kept = set(explored)
    assert kept == cells("a", "T", "h")
    # b's search reaches h, which a's search passed: a's complement serves b too this round
    explored |= cells("elsewhere")
    assert pick("b", nb, hidden, cells("s"), values, explored) is None
    assert explored == kept | cells("elsewhere")  # nothing the earlier searches noted is lost
    # in a fresh round (nothing explored) b finds s itself
    assert pick("b", nb, hidden, cells("s"), values, set()) == "s"


def test_a_search_with_no_path_to_a_shown_cell_notes_what_it_passed() -> None:
    nb = graph(("T", "a", "h"))
    values = {"T": 10, "a": 3, "h": 7}
    explored = cells("elsewhere")
    assert pick("a", nb, cells("T", "a", "h"), cells("T", "a", "h"), values, explored) is None
    assert explored == cells("elsewhere", "T", "a", "h")


def test_a_weeks_public_table_has_no_distinct_people_and_no_median() -> None:
    week = to_json(empty_day())
    week.update(unique_clients=40, visits_completed=30, visit_minutes_mean=22.5, visits=31)
    week["visit_minutes_median"] = None  # medians do not add up (public.sum_tables)
    hidden = {(P, T, "visits_by_route.inject"), (P, T, "visits")}
    out = public_table(P, T, week, hidden, 5, daily=False)
    assert "unique_clients" not in out and "visit_minutes_median" not in out
    assert out["visit_minutes_mean"] == 22.5 and out["visits_completed"] == 30
    assert out["visits"] is None and out["visits_by_route"]["inject"] is None
    assert out["suppressed"] == ["visits", "visits_by_route.inject"]
    # a released day of the same figures keeps both (and hides nothing of another period)
    day = public_table("day:2030-03-04", T, week, hidden, 5, daily=True)
    assert day["unique_clients"] == 40 and "visit_minutes_median" in day
    assert day["visits"] == 31 and day["suppressed"] == []
