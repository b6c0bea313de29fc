"""Small-cell suppression for the public API (pure functions).

Primary suppression: a count in 1..threshold-1 is not shown. Complementary suppression: a
*group* is a linear relation ``total = sum(members)`` that a reader can use to recover a hidden
cell by subtraction. As long as some group has exactly one hidden cell (total or member), one
more cell of that group is hidden: its smallest shown non-zero member (then a zero member, then
the total). This repeats until no group has exactly one hidden cell, so no hidden cell is the
only unknown of any published relation. Zeros are shown unless hidden as complements.

For one day, the public tables are every district plus the city (the sum of the districts), so
the groups are: each breakdown against its total (per district and for the city), the same-value
pairs (deaths = outcome 'died', ...), and every cell of the city against the same cell of all
districts. Public district and city endpoints slice the same decision, so they cannot be
subtracted from each other either.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.projection.figures import BREAKDOWNS, Day
from shared.events.vocabulary import OVERDOSE_KINDS, Outcome

#: Counts about people: suppressed when small. (Supplies, sharps and street needles are
#: quantities of things, not people, and are shown as they are.)
PERSON_COUNTS: tuple[str, ...] = (
    "visits",
    "unique_clients",
    "new_clients",
    "assisted_injections",
    "visits_completed",
    "refusals",
    "referrals",
    "services",
    "incidents",
    "overdoses",
    "life_threatening",
    "naloxone_doses",
    "ambulance_calls",
    "hospital_transfers",
    "deaths",
    "drug_checks",
    "drug_checks_unexpected",
)
PERSON_BREAKDOWNS: tuple[str, ...] = tuple(b for b in BREAKDOWNS if b != "supplies_by_item")
CITY = "*"


@dataclass(frozen=True, slots=True)
class Group:
    """A published relation ``total = sum(members)``."""

    total: Hashable
    members: tuple[Hashable, ...]


def suppress(
    values: Mapping[Hashable, int], groups: Sequence[Group], threshold: int
) -> set[Hashable]:
    """The cells to hide. Every cell named by a group must be in ``values``."""
    hidden = {c for c, v in values.items() if 0 < v < threshold}
    changed = True
    while changed:
        changed = False
        for g in groups:
            unknown = sum(1 for c in (g.total, *g.members) if c in hidden)
            if unknown != 1:
                continue
            shown = [c for c in g.members if c not in hidden]
            if not shown:
                hidden.add(g.total)  # the only hidden cell is a member: hide the total too
            else:
                hidden.add(min(shown, key=lambda c: (values[c] == 0, values[c], repr(c))))
            changed = True
    return hidden


def _district_groups(d: str) -> list[Group]:
    """Relations within one table (a district, or the city)."""

    def cells(name: str, keys: Iterable[str] | None = None) -> tuple[tuple[str, str, str], ...]:
        vocab = BREAKDOWNS[name][1]
        wanted = set(keys) if keys is not None else None
        return tuple((d, name, k.value) for k in vocab if wanted is None or k.value in wanted)

    overdose = [k.value for k in OVERDOSE_KINDS]
    return [
        Group((d, "visits"), cells("visits_by_route")),
        Group((d, "refusals"), cells("refusals_by_reason")),
        Group((d, "referrals"), cells("referrals_by_kind")),
        Group((d, "services"), cells("services_by_kind")),
        Group((d, "incidents"), cells("incidents_by_kind")),
        Group((d, "incidents"), cells("incidents_by_outcome")),
        Group((d, "overdoses"), cells("incidents_by_kind", overdose)),
        Group(
            (d, "hospital_transfers"),
            ((d, "incidents_by_outcome", Outcome.TRANSFERRED_TO_HOSPITAL.value),),
        ),
        Group((d, "deaths"), ((d, "incidents_by_outcome", Outcome.DIED.value),)),
    ]


def _cells(table: str, day: Day) -> dict[Hashable, int]:
    out: dict[Hashable, int] = {(table, f): int(day[f]) for f in PERSON_COUNTS}
    for name in PERSON_BREAKDOWNS:
        for k, n in day[name].items():
            out[(table, name, k)] = int(n)
    return out


def suppress_day(districts: Mapping[str, Day], city: Day, threshold: int) -> set[Hashable]:
    """Hidden cells of one day: keys ``(table, field)`` / ``(table, breakdown, key)`` where
    table is a district id or :data:`CITY`."""
    values: dict[Hashable, int] = _cells(CITY, city)
    groups = _district_groups(CITY)
    for d, day in districts.items():
        values.update(_cells(d, day))
        groups += _district_groups(d)
    for cell in list(_cells(CITY, city)):
        assert isinstance(cell, tuple)
        groups.append(Group(cell, tuple((d, *cell[1:]) for d in sorted(districts))))
    return suppress(values, groups, threshold)


def public_day(table: str, day: Day, hidden: set[Hashable], threshold: int) -> dict[str, Any]:
    """``day`` (figures.to_json form) with hidden cells as None and a ``suppressed`` list of
    their names (``field`` or ``breakdown.key``). Mean/median minutes are hidden when fewer than
    ``threshold`` visits completed (they would describe individuals)."""
    out = dict(day)
    names: list[str] = []
    for f in PERSON_COUNTS:
        if (table, f) in hidden:
            out[f] = None
            names.append(f)
    for b in PERSON_BREAKDOWNS:
        shown = dict(out[b])
        for k in shown:
            if (table, b, k) in hidden:
                shown[k] = None
                names.append(f"{b}.{k}")
        out[b] = shown
    completed = day["visits_completed"]
    if (table, "visits_completed") in hidden or 0 < completed < threshold:
        for f in ("visit_minutes_median", "visit_minutes_mean"):
            if out.get(f) is not None:
                out[f] = None
                names.append(f)
    out["suppressed"] = sorted(names)
    return out
