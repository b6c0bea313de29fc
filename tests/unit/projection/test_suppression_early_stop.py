"""The audit's early stop and its integer bounds, pinned down (found by mutation testing,
docs/mutation-report.md).

``plan`` audits with ``enough=ENOUGH``: a component's audit stops once that many of its cells
are found too narrow, and the cells not looked at are left out of the answer. That is safe only
because plan hides more whenever the answer holds a narrow cell: so the stop must count exactly
the cells plan treats as weak (narrower than the width, except a cell whose exact value, not a
small count, is all it can be). A stop that counted anything else could return an answer with
no weak cell while a narrow one was never looked at, and plan would publish it unprotected.

The instances are hand-made relation systems whose answers follow from arithmetic alone:
three hidden cells pairwise summed to shown totals (``x + y``, ``y + z``, ``x + z``) are each
exact, though no relation has a single unknown. Cells are looked at in name order."""

from __future__ import annotations

import math

from services.projection.suppression import Cell, Range, Relation, audit

P = "day:2030-03-04"


def rel(total: str, *members: str) -> Relation:
    return Relation((P, "t", total), tuple((P, "t", m) for m in members))


def vals(**counts: int) -> dict[Cell, int]:
    return {(P, "t", k): v for k, v in counts.items()}


def hidden(*names: str) -> set[Cell]:
    return {(P, "t", n) for n in names}


def answer(ranges: dict[Cell, Range]) -> dict[str, tuple[float, float]]:
    return {c[2]: (r.low, r.high) for c, r in sorted(ranges.items())}


# a1 + a2 = 5, a2 + a3 = 10, a1 + a3 = 5: a1 is exactly 0, a2 and a3 exactly 5 (the width:
# not small); b + c = 9 - a3 = 4 leaves b and c in 1..3, too narrow for a width of 5
EXACT_FIRST = (
    vals(T1=5, T2=10, T3=5, T4=9, a1=0, a2=5, a3=5, b=2, c=2),
    hidden("a1", "a2", "a3", "b", "c"),
    [
        rel("T1", "a1", "a2"),
        rel("T2", "a2", "a3"),
        rel("T3", "a1", "a3"),
        rel("T4", "a3", "b", "c"),
    ],
)


def test_exact_cells_that_are_no_small_count_do_not_stop_the_audit_before_a_narrow_one() -> None:
    # the exact zero and the exact 5s come first; the stop waits for b, the first weak cell
    values, secret, relations = EXACT_FIRST
    got = audit(values, secret, relations, width=5, enough=1)
    assert answer(got) == {"a1": (0, 0), "a2": (5, 5), "a3": (5, 5), "b": (1, 3)}


def test_without_a_stop_every_cell_is_answered() -> None:
    values, secret, relations = EXACT_FIRST
    everything = {"a1": (0, 0), "a2": (5, 5), "a3": (5, 5), "b": (1, 3), "c": (1, 3)}
    assert answer(audit(values, secret, relations, width=5, enough=2)) == everything
    assert answer(audit(values, secret, relations, width=5)) == everything


# x + y = 3, y + z = 5, x + z = 4: x, y, z are exactly 1, 2, 3: every one small and weak
SMALL_EXACT = (
    vals(T1=3, T2=5, T3=4, x=1, y=2, z=3),
    hidden("x", "y", "z"),
    [rel("T1", "x", "y"), rel("T2", "y", "z"), rel("T3", "x", "z")],
)


def test_the_audit_stops_at_exactly_enough_narrow_cells() -> None:
    values, secret, relations = SMALL_EXACT
    x, y, z = (1, 1), (2, 2), (3, 3)
    # an exact count of 1 is as weak as any: it counts towards the stop
    assert answer(audit(values, secret, relations, width=5, enough=1)) == {"x": x}
    assert answer(audit(values, secret, relations, width=5, enough=2)) == {"x": x, "y": y}
    everything = {"x": x, "y": y, "z": z}
    assert answer(audit(values, secret, relations, width=5, enough=3)) == everything
    assert answer(audit(values, secret, relations, width=5)) == everything


def test_a_cell_exactly_as_wide_as_asked_is_not_narrow() -> None:
    # exact bounds (width infinite): a is unbounded above (h = a + b, h hidden), so as wide as
    # asked, and is no reason to stop; b (1..5, from 6 = b + c) is the first narrow cell
    values = vals(S=6, a=2, b=3, c=3, h=5)
    relations = [rel("h", "a", "b"), rel("S", "b", "c")]
    got = audit(values, hidden("a", "b", "c", "h"), relations, enough=1)
    assert answer(got) == {"a": (1, math.inf), "b": (1, 5)}


def test_a_bound_between_two_counts_is_rounded_inward() -> None:
    # x + y = 10, y + z = 10, x + z + w = 12, all four hidden: x = z = 10 - y and w = 2y - 8 >= 1,
    # so y >= 4.5 in the LP, and a reader who knows counts are whole numbers has y in 5..9:
    # 4 wide, not 5 (with 5 as the threshold, y is not protected)
    values = vals(T1=10, T2=10, T3=12, x=5, y=5, z=5, w=2)
    relations = [rel("T1", "x", "y"), rel("T2", "y", "z"), rel("T3", "x", "z", "w")]
    got = audit(values, hidden("x", "y", "z", "w"), relations)
    assert got[(P, "t", "y")] == Range(5, 9)
    assert answer(got) == {"w": (1, 10), "x": (1, 5), "y": (5, 9), "z": (1, 5)}
    # the same proven with the threshold as width: y is reported narrow
    proven = audit(values, hidden("x", "y", "z", "w"), relations, width=5)
    assert proven[(P, "t", "y")].width < 5
