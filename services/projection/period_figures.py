"""Period figures of rooms, districts and the city, and their public release (pure).

A *table* is the figures of one scope over one period: a mapping from cell name to amount,
where a cell is a plain measure (``visits``, ``deaths``...) or ``measure.key`` for a keyed
measure (``referrals.housing``); every cell of :func:`cell_names` is present (zeros included).
A district's table is the sum of its rooms' tables and the city's the sum of the districts':
exact for every cell, people included, because pseudonyms are keyed per room.

Public release (:func:`hidden_cells`): the LP-audited rule of :mod:`.suppression` (its
:func:`~.suppression.plan`) applied to the tables of every room, district and the city of the
period at once: person counts in 1..threshold-1 are hidden, then more cells until no hidden
cell can be narrowed, through the published relations (a keyed total and its keys, a district
and its rooms, the city and its districts, deaths within outcomes...), to a range narrower than
the threshold. Quantities of things (supplies, sharps, street needles) are shown as they are.
A report is audited on its own: it is not part of the released public periods of :8005.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from services.projection.rooms import KEYED_MEASURES, PLAIN_MEASURES
from services.projection.schema import MEASURES, ROOM_TABLE, Source, room_measures
from services.projection.suppression import Relation, plan
from shared.city import City
from shared.events.vocabulary import OVERDOSE_KINDS, Outcome

Cells = dict[str, Decimal]

#: The visit figures of a table (counted from the ``visits`` facts), keyed measures' vocabularies
#: and the amounts of things (never suppressed): all from :data:`.schema.ROOM_TABLE`.
VISIT_CELLS: tuple[str, ...] = room_measures(source=Source.VISITS)
KEYS: dict[str, tuple[str, ...]] = {m: MEASURES[m].keys for m in KEYED_MEASURES}
THING_MEASURES = frozenset(m.name for m in ROOM_TABLE if not m.person_count)


def cell_names() -> list[str]:
    names = list(VISIT_CELLS)
    for m in KEYED_MEASURES:
        names.append(m)
        names += [f"{m}.{k}" for k in KEYS[m]]
    return names + list(PLAIN_MEASURES)


def is_person_cell(name: str) -> bool:
    return name.split(".", 1)[0] not in THING_MEASURES


def complete(raw: Mapping[str, Decimal]) -> Cells:
    """A room's table from its stored amounts: every cell present, keyed totals added."""
    out: Cells = {n: Decimal(raw.get(n, 0)) for n in cell_names()}
    for m in KEYED_MEASURES:
        out[m] = sum((out[f"{m}.{k}"] for k in KEYS[m]), Decimal(0))
    return out


def add(tables: Iterable[Cells]) -> Cells:
    total: Cells = {n: Decimal(0) for n in cell_names()}
    for t in tables:
        for n, v in t.items():
            total[n] += v
    return total


def scope_tables(city: City, rooms: Mapping[str, Mapping[str, Decimal]]) -> dict[str, Cells]:
    """Tables keyed ``room:<id>``, ``district:<id>`` and ``city`` from every room's amounts."""
    out: dict[str, Cells] = {f"room:{f.id}": complete(rooms.get(f.id, {})) for f in city.facilities}
    for d in city.districts:
        out[f"district:{d.id}"] = add(
            out[f"room:{f.id}"] for f in city.facilities if f.district == d.id
        )
    out["city"] = add(out[f"district:{d.id}"] for d in city.districts)
    return out


#: The one period of a report's release, in :mod:`.suppression`'s cells ``(period, table, field)``.
_REPORT = "report"


@dataclass(frozen=True, slots=True)
class Group:
    """A published relation ``total = sum(members)`` between ``(table, cell)`` pairs."""

    total: tuple[str, str]
    members: tuple[tuple[str, str], ...]


def _table_groups(t: str) -> list[Group]:
    def keyed(m: str, keys: Iterable[str] | None = None) -> tuple[tuple[str, str], ...]:
        wanted = set(keys) if keys is not None else set(KEYS[m])
        return tuple((t, f"{m}.{k}") for k in KEYS[m] if k in wanted)

    groups = [Group((t, m), keyed(m)) for m in KEYED_MEASURES if m not in THING_MEASURES]
    groups += [
        Group((t, "overdoses"), keyed("incidents", {k.value for k in OVERDOSE_KINDS})),
        Group((t, "deaths"), ((t, f"incident_outcomes.{Outcome.DIED.value}"),)),
        Group(
            (t, "hospital_transfers"),
            ((t, f"incident_outcomes.{Outcome.TRANSFERRED_TO_HOSPITAL.value}"),),
        ),
        # life-threatening = survived + (life-threatening deaths <= deaths): exact when deaths=0
        Group((t, "life_threatening"), ((t, "life_threatening_survived"), (t, "deaths"))),
    ]
    return groups


def hidden_cells(city: City, tables: Mapping[str, Cells], threshold: int) -> set[Hashable]:
    """Hidden ``(table, cell)`` pairs of the public release of ``tables`` (see module doc)."""
    person = [n for n in cell_names() if is_person_cell(n)]
    values: dict[tuple[str, str], int] = {(t, n): int(tables[t][n]) for t in tables for n in person}
    groups: list[Group] = []
    for t in tables:
        groups += _table_groups(t)
    for n in person:
        for d in city.districts:
            rooms = tuple((f"room:{f.id}", n) for f in city.facilities if f.district == d.id)
            groups.append(Group((f"district:{d.id}", n), rooms))
        groups.append(Group(("city", n), tuple((f"district:{d.id}", n) for d in city.districts)))
    # Only relations that hold for the true counts are published relations (life-threatening =
    # survived + deaths holds only while every death was life-threatening).
    exact = [g for g in groups if values[g.total] == sum(values[m] for m in g.members)]
    relations = [
        Relation((_REPORT, *g.total), tuple((_REPORT, *m) for m in g.members)) for g in exact
    ]
    cells = {(_REPORT, t, n): v for (t, n), v in values.items()}
    decision = plan(_REPORT, cells, set(), relations, threshold)
    return {(c[1], c[2]) for c in decision.hidden}


def scope_hidden(
    city: City, tables: Mapping[str, Cells], scope_key: str, threshold: int
) -> frozenset[str]:
    """The cells of one scope's table hidden in the public release of all ``tables``."""
    return frozenset(
        str(c[1])
        for c in hidden_cells(city, tables, threshold)
        if isinstance(c, tuple) and c[0] == scope_key
    )
