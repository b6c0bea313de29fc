"""Deciding a released period's public table (pure: no I/O).

A :class:`Release` is what is frozen when a period is released: its figures (unsuppressed, kept
internal, so later periods are audited against exactly what was published) and the cells it
hides. A day's figures come from the read models at release; a week's or month's are the sum of
its released days' frozen figures, so a late report never shows up as a difference between a
week and its days.

:func:`decide` builds every relation a reader can combine with the new period (its own tables,
its days, the weeks and months already released that overlap it with their days) and lets
:func:`~.suppression.plan` choose the hidden cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.projection.figures import BREAKDOWNS, MINUTE_FIELDS
from services.projection.release_periods import Period, PeriodKind
from services.projection.suppression import (
    CITY,
    Cell,
    Relation,
    period_relations,
    plan,
    public_table,
    table_cells,
    time_relations,
)

#: Not shown in the API; stored so a week's mean can be computed from its days.
SECONDS = "visit_seconds_total"
Figures = dict[str, Any]  # one table: figures.to_json form plus SECONDS


@dataclass(frozen=True)
class Release:
    period: Period
    threshold: int
    #: table id (district or CITY) -> frozen figures
    tables: Mapping[str, Figures]
    #: (table, field) pairs hidden
    hidden: frozenset[tuple[str, str]]
    withheld: bool
    released_at: datetime

    def hidden_cells(self) -> set[Cell]:
        return {(self.period.name, t, f) for t, f in self.hidden}

    def cells(self) -> dict[Cell, int]:
        daily = self.period.kind is PeriodKind.DAY
        out: dict[Cell, int] = {}
        for t, figures in self.tables.items():
            out.update(table_cells(self.period.name, t, figures, daily))
        return out

    def public(self, districts: Sequence[str]) -> dict[str, Any]:
        """The published answer: every table with hidden cells as null (all null if withheld)."""
        daily = self.period.kind is PeriodKind.DAY
        hidden = self.hidden_cells()
        tables: dict[str, Any] = {}
        for t in (CITY, *districts):
            shown = {k: v for k, v in self.tables[t].items() if k != SECONDS}
            if self.withheld:
                tables["city" if t == CITY else t] = None
                continue
            table = public_table(self.period.name, t, shown, hidden, self.threshold, daily)
            tables["city" if t == CITY else t] = table
        return {
            "period": self.period.kind.value,
            "from": self.period.start.isoformat(),
            "to": self.period.end.isoformat(),
            "released_at": self.released_at.isoformat(),
            "suppression_threshold": self.threshold,
            "withheld": self.withheld,
            "tables": tables,
        }


def sum_tables(days: Sequence[Figures]) -> Figures:
    """Frozen day figures of one table added up (a week's or month's). Mean minutes are
    recomputed from the seconds; medians do not add up (None)."""
    out: Figures = {}
    for day in days:
        for k, v in day.items():
            if k in MINUTE_FIELDS:
                continue
            if isinstance(v, dict):
                into = out.setdefault(k, {})
                for key, n in v.items():
                    into[key] = into.get(key, 0) + n
            else:
                out[k] = out.get(k, 0) + v
    for k, v in out.items():
        if isinstance(v, float):
            out[k] = round(v, 6)
    for name in BREAKDOWNS:
        out.setdefault(name, {})
    completed = out.get("visits_completed", 0)
    out["visit_minutes_median"] = None
    out["visit_minutes_mean"] = (
        round(out.get(SECONDS, 0) / completed / 60, 2) if completed > 0 else None
    )
    return out


def decide(
    period: Period,
    tables: Mapping[str, Figures],
    earlier: Sequence[Release],
    districts: Sequence[str],
    threshold: int,
    now: datetime,
) -> Release:
    """The release of ``period`` with figures ``tables``, given every earlier release it must
    be audited with (its days, overlapping weeks and months, and their days)."""
    values: dict[Cell, int] = {}
    relations: list[Relation] = []
    fixed_hidden: set[Cell] = set()
    daily = period.kind is PeriodKind.DAY
    for t, figures in tables.items():
        values.update(table_cells(period.name, t, figures, daily))
    relations += period_relations(period.name, districts, daily)
    stored = {r.period.name for r in earlier}
    for p in (period, *(r.period for r in earlier)):
        if p.kind is not PeriodKind.DAY:
            names = [d.name for d in p.days()]
            missing = [n for n in names if n not in stored]
            if missing:
                raise ValueError(f"{p.name}: days not released yet: {missing[:3]}")
            relations += time_relations(p.name, names, districts)
    for r in earlier:
        values.update(r.cells())
        relations += period_relations(r.period.name, districts, r.period.kind is PeriodKind.DAY)
        fixed_hidden |= set(r.cells()) if r.withheld else r.hidden_cells()
    decision = plan(period.name, values, fixed_hidden, relations, threshold)
    return Release(
        period=period,
        threshold=threshold,
        tables=dict(tables),
        hidden=frozenset((c[1], c[2]) for c in decision.hidden),
        withheld=decision.withheld,
        released_at=now,
    )
