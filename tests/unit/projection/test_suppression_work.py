"""The work suppression does, pinned down (found by mutation testing, docs/mutation-report.md).

A public release must be computed in bounded time, and many one-line mistakes in the audit's
search (a phase run once more, a shortcut skipped, ranges forgotten between rounds) change no
decision, only how many linear programs are solved. The work is counted in the project's own
code: the LPs built (``_Lp``: one per component audited afresh) and solved (``_Lp.solve``),
and the audit rounds, on a fixed week of seven days over four districts. The bounds leave the
current code about 10 % of room and are exceeded by the mistakes mutation testing made. The
counts follow the vertices HiGHS returns (and the seeded random signs of the group phase, from
numpy's Generator), so highspy is pinned in pyproject.toml; after an upgrade of either,
re-measure (the counts are in the assertion messages) and adjust the bounds.

And the audit writes nothing: HiGHS's solver log would go to the projection's stdout (its log)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

import numpy as np
import pytest

from services.projection import public, suppression
from services.projection.public import Release, decide, sum_tables
from services.projection.release_periods import Period, PeriodKind
from services.projection.suppression import CITY, Cell, Relation, audit
from tests.unit.projection.test_suppression import DISTRICTS, NOW, _tables

#: Measured on the current code (highspy 1.16.0): 1276 LP solves, 33 LPs built, 9 rounds.
MAX_SOLVES = 1400
MAX_LPS = 36
MAX_ROUNDS = 10


def _week() -> tuple[Period, dict[str, dict[str, object]], list[Release]]:
    rng = random.Random(7)
    week = Period.of(PeriodKind.WEEK, date(2030, 3, 4))
    days = [decide(d, _tables(rng), [], DISTRICTS, 5, NOW) for d in week.days()]
    tables = {t: sum_tables([d.tables[t] for d in days]) for t in (CITY, *DISTRICTS)}
    return week, tables, days


def test_a_week_is_decided_with_a_bounded_number_of_lp_solves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    week, tables, days = _week()
    work: Counter[str] = Counter()
    solve, build, audit_ = suppression._Lp.solve, suppression._Lp.__init__, suppression.audit

    def counted_solve(self: suppression._Lp, objective: np.ndarray) -> np.ndarray:
        work["solves"] += 1
        return solve(self, objective)

    def counted_build(
        self: suppression._Lp, values: dict[Cell, int], cells: list[Cell], rels: list[Relation]
    ) -> None:
        work["lps"] += 1
        build(self, values, cells, rels)

    def counted_audit(*args: object, **kwargs: object) -> object:
        work["rounds"] += 1
        return audit_(*args, **kwargs)  # type: ignore[arg-type]

    decisions: list[suppression.Decision] = []

    def recorded_plan(*args: object, **kwargs: object) -> suppression.Decision:
        decisions.append(suppression.plan(*args, **kwargs))  # type: ignore[arg-type]
        return decisions[-1]

    monkeypatch.setattr(suppression._Lp, "solve", counted_solve)
    monkeypatch.setattr(suppression._Lp, "__init__", counted_build)
    monkeypatch.setattr(suppression, "audit", counted_audit)
    monkeypatch.setattr(public, "plan", recorded_plan)
    release = decide(week, tables, days, DISTRICTS, 5, NOW)
    assert not release.withheld and release.hidden  # a real decision, with work to do
    assert [d.rounds for d in decisions] == [work["rounds"]]  # the rounds it reports
    assert work["solves"] <= MAX_SOLVES, work
    assert work["lps"] <= MAX_LPS, work
    assert 1 < work["rounds"] <= MAX_ROUNDS, work


def test_the_audit_writes_nothing_to_the_output(capfd: pytest.CaptureFixture[str]) -> None:
    def rel(total: str, *members: str) -> Relation:
        return Relation(("p", "t", total), tuple(("p", "t", m) for m in members))

    values = {("p", "t", k): v for k, v in {"T": 10, "a": 4, "b": 6, "U": 9, "c": 3}.items()}
    hidden = {("p", "t", x) for x in ("a", "b", "c")}
    relations = [rel("T", "a", "b"), rel("U", "b", "c")]
    audit(values, hidden, relations)  # HiGHS prints its banner once per process: not ours
    capfd.readouterr()
    ranges = audit(values, hidden, relations)
    assert ranges  # the LPs were solved
    assert capfd.readouterr() == ("", "")
