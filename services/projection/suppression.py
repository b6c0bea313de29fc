"""Small-cell suppression of the public figures, audited by linear programming (pure: no I/O).

A *cell* is one published count: ``(period, table, field)`` where ``period`` names a released
period (``day:2026-11-20``, ``week:2026-11-16``, ``month:2026-11-01``), ``table`` a district id
or :data:`CITY`, and ``field`` a count (``visits``) or a breakdown key (``visits_by_route.inject``).
A *relation* ``total = sum(members)`` is what a reader can combine: every breakdown against its
total, nested groups (overdoses = the overdose kinds of incidents-by-kind, deaths = outcome
'died'), the city against its districts, and a week or month against its days.

The rule (:func:`plan`):

1. *Primary*: a count in ``1 .. threshold-1`` of the new period is hidden.
2. *Audit*: for every hidden cell, the smallest and largest value a reader can derive from
   everything published (the new period and every released period related to it), with each
   hidden cell non-negative (and at least 1 if it is not zero: a reader who knows the rule might
   know it) is found by linear programming (HiGHS, through highspy), bounds rounded inward to
   integers.
3. *Protection*: that range must be at least ``threshold`` wide. A hidden cell whose range is
   narrower makes one more cell of the new period hidden (the smallest shown non-zero cell of a
   relation it is in, else a zero) and the audit runs again, until every range is wide enough.
   Cells of released periods never change; if no new cell can help, the new period is withheld.

Invariant: :func:`plan` returns only decisions for which :func:`audit` finds no hidden cell with
a range narrower than the threshold. Hidden cells are published as ``null`` whatever their value
(primary or complement, zero or not), so a null tells nothing beyond the ranges audited here.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np

from services.projection.figures import BREAKDOWNS, Day
from services.projection.schema import DISTRICT_DAILY
from shared.events.vocabulary import OVERDOSE_KINDS, Outcome

#: Counts about people: suppressed when small. (Supplies, sharps and street needles are
#: quantities of things, not people, and are shown as they are.)
PERSON_COUNTS: tuple[str, ...] = tuple(c.name for c in DISTRICT_DAILY if c.person_count)
PERSON_BREAKDOWNS: tuple[str, ...] = tuple(b for b in BREAKDOWNS if b != "supplies_by_item")
#: Distinct people do not add up over days: a week or month has no ``unique_clients``.
DAILY_ONLY: frozenset[str] = frozenset({"unique_clients"})
CITY = "*"

Cell = tuple[str, str, str]  # (period, table, field)


@dataclass(frozen=True, slots=True)
class Relation:
    """A published relation ``total = sum(members)``."""

    total: Cell
    members: tuple[Cell, ...]


def fields(daily: bool) -> list[str]:
    """The person-count cells of one table (``breakdown.key`` for breakdown cells)."""
    out = [f for f in PERSON_COUNTS if daily or f not in DAILY_ONLY]
    for name in PERSON_BREAKDOWNS:
        out.extend(f"{name}.{k.value}" for k in BREAKDOWNS[name][1])
    return out


def table_cells(period: str, table: str, day: Day, daily: bool) -> dict[Cell, int]:
    """The person-count cells of one table of figures (figures.Day form)."""
    out: dict[Cell, int] = {}
    for f in fields(daily):
        if "." in f:
            name, key = f.split(".", 1)
            out[(period, table, f)] = int(day[name].get(key, 0))
        else:
            out[(period, table, f)] = int(day[f])
    return out


def table_relations(period: str, table: str) -> list[Relation]:
    """Relations within one table (a district's or the city's)."""

    def c(f: str) -> Cell:
        return (period, table, f)

    def keys(name: str, only: Iterable[str] | None = None) -> tuple[Cell, ...]:
        wanted = set(only) if only is not None else None
        vocab = BREAKDOWNS[name][1]
        return tuple(c(f"{name}.{k.value}") for k in vocab if wanted is None or k.value in wanted)

    return [
        Relation(c("visits"), keys("visits_by_route")),
        Relation(c("refusals"), keys("refusals_by_reason")),
        Relation(c("referrals"), keys("referrals_by_kind")),
        Relation(c("services"), keys("services_by_kind")),
        Relation(c("incidents"), keys("incidents_by_kind")),
        Relation(c("incidents"), keys("incidents_by_outcome")),
        Relation(c("overdoses"), keys("incidents_by_kind", [k.value for k in OVERDOSE_KINDS])),
        Relation(
            c("hospital_transfers"),
            (c(f"incidents_by_outcome.{Outcome.TRANSFERRED_TO_HOSPITAL.value}"),),
        ),
        Relation(c("deaths"), (c(f"incidents_by_outcome.{Outcome.DIED.value}"),)),
    ]


def period_relations(period: str, districts: Sequence[str], daily: bool) -> list[Relation]:
    """Every relation within one period: each table's, and the city against its districts."""
    out: list[Relation] = []
    for t in (CITY, *districts):
        out += table_relations(period, t)
    for f in fields(daily):
        out.append(Relation((period, CITY, f), tuple((period, d, f) for d in districts)))
    return out


def time_relations(period: str, days: Sequence[str], districts: Sequence[str]) -> list[Relation]:
    """A week's or month's cells against the same cells of its days."""
    return [
        Relation((period, t, f), tuple((d, t, f) for d in days))
        for t in (CITY, *districts)
        for f in fields(daily=False)
    ]


@dataclass(frozen=True)
class Range:
    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low


def _components(hidden: set[Cell], relations: Sequence[Relation]) -> list[list[int]]:
    """Indices of the relations, grouped by the connected hidden cells they share."""
    parent: dict[Cell, Cell] = {}

    def find(c: Cell) -> Cell:
        while parent.setdefault(c, c) != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    touching: list[tuple[int, Cell]] = []
    for i, r in enumerate(relations):
        unknown = [c for c in (r.total, *r.members) if c in hidden]
        if not unknown:
            continue
        for c in unknown[1:]:
            parent[find(c)] = find(unknown[0])
        touching.append((i, unknown[0]))
    groups: dict[Cell, list[int]] = defaultdict(list)
    for i, c in touching:
        groups[find(c)].append(i)
    return list(groups.values())


def audit(
    values: Mapping[Cell, int],
    hidden: set[Cell],
    relations: Sequence[Relation],
    width: float = math.inf,
    only: set[str] | None = None,
    seen: dict[Cell, Range] | None = None,
    done: dict[frozenset[Cell], dict[Cell, Range]] | None = None,
    enough: float = math.inf,
    settled: Collection[Cell] = (),
) -> dict[Cell, Range]:
    """A range a reader cannot narrow, for every hidden cell that appears in a relation.

    ``values`` are the true counts (published cells are what the reader sees). A hidden cell is
    bounded below by 0, or 1 if its true value is not zero (conservative: as if the reader knew
    which hidden cells are zero); integers, so bounds are rounded inward. For each cell the
    returned range is spanned by feasible solutions the LPs found: once it is ``width`` wide the
    cell is proven protected and its exact bounds are not sought (default: always exact).
    Cells in no relation are unbounded above and not returned.

    First, hidden cells that the relations determine by elimination alone (a relation with one
    unknown cell gives it; repeated) get their exact value as range and are constants in the
    LPs; the rest split into independent components (hidden cells linked by relations), each
    solved on its own. With ``only`` (period names), only components holding a cell of those
    periods are audited. ``seen`` carries the ranges spanned by earlier solutions: hiding more
    cells only adds feasible tables (an earlier solution, with the newly hidden cells at their
    true values, is still one), so a range once seen stays a valid lower bound across
    :func:`plan`'s rounds. ``done`` carries the ranges of components already audited (same
    hidden cells, hence same relations and constants: same answer). With ``enough``, a
    component's audit stops once that many of its cells are found too narrow (cells not looked
    at are then missing from the answer: :func:`plan` hides more and audits again). Cells in
    ``settled`` (released cells :func:`plan` found exactly computable earlier in the same
    decision) are answered with their value without solving again.
    """
    determined = _determined(hidden, relations)
    out: dict[Cell, Range] = {c: Range(float(values[c]), float(values[c])) for c in determined}
    free = hidden - determined
    for component in _components(free, relations):
        rels = [relations[i] for i in component]
        if only is not None and not any(c[0] in only for r in rels for c in (r.total, *r.members)):
            continue
        cells = sorted({c for r in rels for c in (r.total, *r.members) if c in free})
        key = frozenset(cells)
        found = done.get(key) if done is not None else None
        if found is None:
            found = _component_ranges(values, cells, rels, width, seen or {}, enough, settled)
            if done is not None and len(found) == len(cells):
                done[key] = found
        if seen is not None:
            seen.update(found)
        out.update(found)
    return out


def _determined(hidden: set[Cell], relations: Sequence[Relation]) -> set[Cell]:
    """Hidden cells a reader computes exactly by elimination: a relation whose cells are all
    shown (or already computed) but one gives that one; repeated until nothing changes."""
    by_cell: dict[Cell, list[int]] = defaultdict(list)
    unknown: list[set[Cell]] = []
    for i, r in enumerate(relations):
        cells = {c for c in (r.total, *r.members) if c in hidden}
        unknown.append(cells)
        for c in cells:
            by_cell[c].append(i)
    work = [i for i, cells in enumerate(unknown) if len(cells) == 1]
    found: set[Cell] = set()
    while work:
        i = work.pop()
        if len(unknown[i]) != 1:
            continue
        (c,) = unknown[i]
        found.add(c)
        for j in by_cell[c]:
            unknown[j].discard(c)
            if len(unknown[j]) == 1:
                work.append(j)
    return found


#: Stands for "no upper bound" in the LPs (every count here is far below it): with it every LP
#: has an optimum, and a cell that reaches it is as good as unbounded.
UNBOUNDED = 1e7


def _component_ranges(
    values: Mapping[Cell, int],
    cells: list[Cell],
    rels: list[Relation],
    width: float,
    seen_before: Mapping[Cell, Range],
    enough: float = math.inf,
    settled: Collection[Cell] = (),
) -> dict[Cell, Range]:
    """Every solution an LP returns is a feasible table: it widens the seen range of every cell
    at once. First whole groups of cells are pushed up and down together (objective: the sum of
    the cells not yet proven protected, then random signs over them while that helps), then each
    remaining cell alone (its exact min and max). Once ``enough`` cells are found narrower than
    ``width`` (not counting a cell whose exact value, not a small count, is all it can be), the
    cells not looked at yet are left out of the answer."""
    low = np.array([float(values[c]) for c in cells])
    high = low.copy()
    for i, c in enumerate(cells):
        if c in seen_before:
            low[i] = min(low[i], seen_before[c].low)
            high[i] = max(high[i], seen_before[c].high)
    wide = np.floor(high + 1e-6) - np.ceil(low - 1e-6)
    if np.all(wide >= width):
        return {c: Range(float(low[i]), float(high[i])) for i, c in enumerate(cells)}
    lp = _Lp(values, cells, rels)

    def seen(x: np.ndarray) -> None:
        np.minimum(low, x, out=low)
        np.maximum(high, x, out=high)

    def open_cells() -> np.ndarray:
        wide = np.floor(high + 1e-6) - np.ceil(low - 1e-6)
        return np.flatnonzero(wide < width)

    signs = np.random.default_rng(len(cells))  # fixed seed: the same tables, the same decision
    todo = open_cells()
    tries = 0
    while len(todo) > 1 and tries < 2:
        for direction in (-1.0, 1.0):
            objective = np.zeros(len(cells))
            objective[todo] = direction if tries == 0 else signs.choice((-1.0, 1.0), len(todo))
            seen(lp.solve(objective))
        left = open_cells()
        tries = tries + 1 if len(left) == len(todo) else 0
        todo = left
    floor = np.array([1.0 if values[c] > 0 else 0.0 for c in cells])
    out: dict[Cell, Range] = {}
    narrow = 0
    for i in open_cells():
        if cells[i] in settled:
            out[cells[i]] = Range(float(values[cells[i]]), float(values[cells[i]]))
            continue
        for direction in (-1.0, 1.0):
            if np.floor(high[i] + 1e-6) - np.ceil(low[i] - 1e-6) >= width:
                break
            if direction > 0 and low[i] <= floor[i] + 1e-9:
                break  # already seen at its lower bound: the minimum
            objective = np.zeros(len(cells))
            objective[i] = direction
            seen(lp.solve(objective))
        rng = Range(_integral(low[i], up=True), _integral(high[i]))
        out[cells[i]] = rng
        value = values[cells[i]]
        if rng.width < width and not (rng.low == rng.high == value and not 0 < value < width):
            narrow += 1
            if narrow >= enough:
                break  # the caller hides more and asks again: the rest is not needed yet
    for i, c in enumerate(cells):
        if c not in out and np.floor(high[i] + 1e-6) - np.ceil(low[i] - 1e-6) >= width:
            out[c] = Range(_integral(low[i], up=True), _integral(high[i]))
    return out


class _Lp:
    """The feasible tables of one component for HiGHS: one variable per hidden cell, one equality
    row per relation (the shown cells moved to the right-hand side), each variable between its
    lower bound (0, or 1 if not zero) and :data:`UNBOUNDED`. Solved again and again with another
    objective (HiGHS starts from the previous basis)."""

    def __init__(self, values: Mapping[Cell, int], cells: list[Cell], rels: list[Relation]) -> None:
        index = {c: i for i, c in enumerate(cells)}
        columns: list[list[tuple[int, float]]] = [[] for _ in cells]
        rhs = np.zeros(len(rels))
        for k, r in enumerate(rels):
            for c, sign in ((r.total, 1.0), *((m, -1.0) for m in r.members)):
                if c in index:
                    columns[index[c]].append((k, sign))
                else:
                    rhs[k] -= sign * values[c]
        lp = highspy.HighsLp()
        lp.num_col_ = len(cells)
        lp.num_row_ = len(rels)
        lp.col_cost_ = np.zeros(len(cells))
        lp.col_lower_ = np.array([1.0 if values[c] > 0 else 0.0 for c in cells])
        lp.col_upper_ = np.full(len(cells), UNBOUNDED)
        lp.row_lower_ = rhs
        lp.row_upper_ = rhs.copy()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.cumsum([0, *(len(col) for col in columns)]).astype(np.int32)
        lp.a_matrix_.index_ = np.array([k for col in columns for k, _ in col], dtype=np.int32)
        lp.a_matrix_.value_ = np.array([v for col in columns for _, v in col], dtype=float)
        self._highs = highspy.Highs()  # type: ignore[no-untyped-call]
        self._highs.setOptionValue("output_flag", False)
        self._highs.setOptionValue("simplex_strategy", 4)
        self._highs.passModel(lp)
        self._all = np.arange(len(cells), dtype=np.int32)

    def solve(self, objective: np.ndarray) -> np.ndarray:
        """An optimal (vertex) solution of min objective·x over the feasible tables."""
        self._highs.changeColsCost(len(objective), self._all, objective.astype(float))
        self._highs.run()
        status = self._highs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise ValueError(
                f"suppression audit: the published relations are inconsistent: {status}"
            )
        return np.array(self._highs.getSolution().col_value, dtype=float)


def _integral(x: float, up: bool = False) -> float:
    """``x`` rounded inward to an integer (counts are integers), tolerating solver noise."""
    if x >= UNBOUNDED - 1:
        return math.inf
    return float(math.ceil(x - 1e-6) if up else math.floor(x + 1e-6))


#: How many too-narrow cells of one component an audit round of :func:`plan` looks for before
#: hiding more (the rest of that component is audited in the next round).
ENOUGH = 20


@dataclass(frozen=True)
class Decision:
    hidden: frozenset[Cell]
    withheld: bool
    rounds: int


def plan(
    period: str,
    values: Mapping[Cell, int],
    released_hidden: set[Cell],
    relations: Sequence[Relation],
    threshold: int,
) -> Decision:
    """Which cells of ``period`` to hide, given the released periods' decisions.

    ``values``: true counts of every cell named by ``relations`` (those of released periods as
    frozen when they were released). ``released_hidden``: cells of released periods that are
    hidden (fixed). Returns the hidden cells of ``period`` (or every cell, ``withheld``, if no
    choice of this period's cells protects every hidden cell).

    A cell of ``period`` that a reader can compute exactly from what is published anyway (e.g.
    a week's visits as the sum of its shown days), and that is not a small count, is shown:
    hiding it protects nothing, and showing it tells the reader nothing new (every table the
    audit considers possible already has that value, so the other ranges stay as audited). Such
    cells are found once the rest of the decision is safe: hiding more could make them
    unknown again, so they are not shown earlier. A released hidden cell that is not a
    small count and that the reader can now compute exactly is published in effect; it needs no
    protection (it cannot be unhidden: released tables are frozen), and it is not solved for
    again in later rounds of the same decision.
    """
    new = {c for c in values if c[0] == period}
    small = {c for c, v in values.items() if 0 < v < threshold}
    shown_anyway = _computable(values, released_hidden, new, relations) - small
    hidden = set(released_hidden) | (new & small)
    by_cell: dict[Cell, list[Relation]] = defaultdict(list)
    for r in relations:
        for c in (r.total, *r.members):
            by_cell[c].append(r)

    @functools.cache
    def neighbours(c: Cell) -> frozenset[Cell]:
        return frozenset(m for r in by_cell[c] for m in (r.total, *r.members))

    _no_single_unknown(values, hidden, new - shown_anyway, relations)
    seen: dict[Cell, Range] = {}
    done: dict[frozenset[Cell], dict[Cell, Range]] = {}
    settled: set[Cell] = set()
    rounds = 0
    while True:
        rounds += 1
        ranges = audit(values, hidden, relations, threshold, {period}, seen, done, ENOUGH, settled)
        weak = {c for c, rng in ranges.items() if rng.width < threshold}
        exact = {c for c in weak - small if ranges[c].low == ranges[c].high == values[c]}
        settled |= exact - new
        weak -= exact
        if not weak:
            hidden -= exact & new
            return Decision(frozenset(hidden & new), withheld=False, rounds=rounds)
        added = False
        explored: set[Cell] = set()
        for c in sorted(weak):
            complement = _complement(c, neighbours, hidden, new - shown_anyway, values, explored)
            if complement is not None:
                hidden.add(complement)
                added = True
        if not added:
            if new - shown_anyway <= hidden:
                return Decision(frozenset(new), withheld=True, rounds=rounds)
            hidden |= new - shown_anyway  # nothing local helps: hide the period's person counts


def _complement(
    weak: Cell,
    neighbours: Callable[[Cell], frozenset[Cell]],
    hidden: set[Cell],
    allowed: set[Cell],
    values: Mapping[Cell, int],
    explored: set[Cell],
) -> Cell | None:
    """The shown cell of ``allowed`` nearest to ``weak`` through the relations (first those
    sharing a relation with it, then those sharing one with the hidden cells next to it, ...),
    smallest non-zero value first, else a zero. None if no relation path reaches one, or if the
    search meets hidden cells ``explored`` by an earlier search of this round (whose complement
    serves this cell too; the next round's audit tells). Adds the cells it passes to
    ``explored``."""
    frontier = {weak}
    visited = {weak}
    while frontier:
        near: set[Cell] = set()
        for c in frontier:
            near |= neighbours(c)
        candidates = [m for m in near if m in allowed and m not in hidden]
        if candidates:
            explored |= visited
            return min(candidates, key=lambda m: (values[m] == 0, values[m], m))
        frontier = {m for m in near if m in hidden and m not in visited}
        if frontier & explored:
            return None
        visited |= frontier
    explored |= visited
    return None


def _computable(
    values: Mapping[Cell, int],
    released_hidden: set[Cell],
    new: set[Cell],
    relations: Sequence[Relation],
) -> set[Cell]:
    """Cells of the new period a reader computes from the shown cells of released periods
    alone, whatever the new period hides (a relation with one unknown cell gives it away)."""
    known = {c for c in values if c not in new and c not in released_hidden}
    found: set[Cell] = set()
    changed = True
    while changed:
        changed = False
        for r in relations:
            unknown = [c for c in (r.total, *r.members) if c not in known]
            if len(unknown) == 1 and unknown[0] in new:
                known.add(unknown[0])
                found.add(unknown[0])
                changed = True
    return found


def _no_single_unknown(
    values: Mapping[Cell, int], hidden: set[Cell], new: set[Cell], relations: Sequence[Relation]
) -> None:
    """A cheap first pass (classic complementary suppression, no LP): while a relation has
    exactly one hidden cell, hide its smallest shown non-zero cell of the new period (else a
    zero). Saves audit rounds; the audit alone decides whether the result is safe."""
    changed = True
    while changed:
        changed = False
        for r in relations:
            cells = (r.total, *r.members)
            if sum(1 for c in cells if c in hidden) != 1:
                continue
            shown = [c for c in cells if c in new and c not in hidden]
            if shown:
                hidden.add(min(shown, key=lambda c: (values[c] == 0, values[c], c)))
                changed = True


def public_table(
    period: str,
    table: str,
    figures: Mapping[str, Any],
    hidden: Iterable[Cell],
    threshold: int,
    daily: bool,
) -> dict[str, Any]:
    """One table of a released period (``figures``: figures.to_json form) with its hidden cells
    as None and a ``suppressed`` list of their names. Mean/median minutes are shown only when at
    least ``threshold`` visits completed and that count is shown; a week or month has no median
    and no ``unique_clients`` (they do not add up over days)."""
    mine = {c[2] for c in hidden if c[0] == period and c[1] == table}
    out = dict(figures)
    if not daily:
        for f in (*DAILY_ONLY, "visit_minutes_median"):
            out.pop(f, None)
    for f in fields(daily):
        if f not in mine:
            continue
        if "." in f:
            name, key = f.split(".", 1)
            out[name] = {**out[name], key: None}
        else:
            out[f] = None
    names = sorted(mine)
    completed = out.get("visits_completed")
    if completed is None or completed < threshold:
        for f in ("visit_minutes_median", "visit_minutes_mean"):
            if out.get(f) is not None:
                out[f] = None
                names.append(f)
    out["suppressed"] = names
    return out
