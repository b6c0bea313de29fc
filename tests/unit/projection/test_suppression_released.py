"""How plan treats the hidden cells of released periods, pinned down (found by mutation testing,
docs/mutation-report.md): released tables are frozen, so a released hidden cell can be neither
shown nor given a complement of its own period; a new period must protect it with its own
cells or be withheld.

- A released hidden cell that a reader computes exactly from released shown cells, and that is
  no small count, is published in effect: it needs no protection and must not make the new
  period withheld.
- When nothing local helps, plan hides every cell of the new period it may hide: the released
  hidden cells stay hidden in that audit (a reader still does not know them), so a new cell
  that would give one of them away is never shown.

The instances are hand-made relation systems whose answers follow from arithmetic alone."""

from __future__ import annotations

from services.projection.suppression import Cell, Relation, audit, plan

DAY, OTHER_DAY, WEEK = "day:2030-03-04", "day:2030-03-05", "week:2030-03-04"


def c(period: str, field: str) -> Cell:
    return (period, "t", field)


def test_a_released_hidden_cell_a_reader_computes_exactly_needs_no_protection() -> None:
    # the day hid a1, a2, a3 (0, 5, 5); its shown totals a1 + a2 = 5, a2 + a3 = 10 and
    # a1 + a3 = 5 give each of them exactly, and none is a small count. The week's N = a3 + n
    # with n = 2 (small): hiding n and N protects n; the exact released cells ask for nothing
    values = {
        c(DAY, "T1"): 5, c(DAY, "T2"): 10, c(DAY, "T3"): 5,
        c(DAY, "a1"): 0, c(DAY, "a2"): 5, c(DAY, "a3"): 5,
        c(WEEK, "N"): 7, c(WEEK, "n"): 2,
    }  # fmt: skip
    relations = [
        Relation(c(DAY, "T1"), (c(DAY, "a1"), c(DAY, "a2"))),
        Relation(c(DAY, "T2"), (c(DAY, "a2"), c(DAY, "a3"))),
        Relation(c(DAY, "T3"), (c(DAY, "a1"), c(DAY, "a3"))),
        Relation(c(WEEK, "N"), (c(DAY, "a3"), c(WEEK, "n"))),
    ]
    released_hidden = {c(DAY, "a1"), c(DAY, "a2"), c(DAY, "a3")}
    decision = plan(WEEK, values, released_hidden, relations, threshold=5)
    assert decision.withheld is False
    assert decision.hidden == {c(WEEK, "n"), c(WEEK, "N")}
    assert decision.rounds == 2  # n found exact and given N; then nothing is narrow
    ranges = audit(values, released_hidden | decision.hidden, relations)
    assert ranges[c(WEEK, "n")].width >= 5


def test_a_week_never_shows_a_cell_that_gives_a_released_hidden_cell_away() -> None:
    # A day released under a lower threshold (2) hid r = 2 and q = 2 of its shown D = 4: at the
    # current threshold (5) r and q are too narrow (1..3), and no cell of the week can widen
    # them. The week's n = r + r' (9, with the other day's r' = 7 shown) would give r away:
    # 9 - 7. Nothing local helps, so the week hides all it may and, r and q still narrow, is
    # withheld; above all, n is never shown.
    values = {
        c(DAY, "D"): 4, c(DAY, "r"): 2, c(DAY, "q"): 2, c(OTHER_DAY, "r"): 7,
        c(WEEK, "n"): 9, c(WEEK, "Z"): 16, c(WEEK, "z1"): 8, c(WEEK, "z2"): 8,
    }  # fmt: skip
    relations = [
        Relation(c(DAY, "D"), (c(DAY, "r"), c(DAY, "q"))),
        Relation(c(WEEK, "n"), (c(DAY, "r"), c(OTHER_DAY, "r"))),
        Relation(c(WEEK, "Z"), (c(WEEK, "z1"), c(WEEK, "z2"))),
    ]
    released_hidden = {c(DAY, "r"), c(DAY, "q")}
    decision = plan(WEEK, values, released_hidden, relations, threshold=5)
    assert c(WEEK, "n") in decision.hidden
    assert decision.withheld is True
    assert decision.hidden == {c(WEEK, x) for x in ("n", "Z", "z1", "z2")}
    assert decision.rounds == 2  # no complement; all hidden and still narrow
