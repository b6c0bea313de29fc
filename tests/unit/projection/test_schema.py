"""services/projection/schema.py declares district_daily, the per-room table and the street
collections once: the declarations match the migrations, and every module that lists columns,
measures or cells derives them from it."""

from __future__ import annotations

import re
from decimal import Decimal

from services.projection import (
    domain,
    figures,
    period_figures,
    period_queries,
    reconcile,
    responses,
    rooms,
    schema,
    suppression,
)
from shared.events import vocabulary as v
from shared.settings import REPO_ROOT

MIGRATIONS = REPO_ROOT / "deploy" / "postgres" / "migrations"
SQL_TYPES = {
    schema.Unit.COUNT: {"integer", "bigint"},
    schema.Unit.KG: {"numeric"},
    schema.Unit.MINUTES: {"numeric"},
    schema.Unit.SECONDS: {"numeric"},
}


def _migrated_columns(table: str) -> dict[str, str]:
    """Column -> SQL type of ``table`` after every migration (CREATE TABLE, then ADD COLUMN)."""
    columns: dict[str, str] = {}
    for path in sorted(MIGRATIONS.glob("*.sql")):
        sql = re.sub(r"--[^\n]*", "", path.read_text())
        create = re.search(rf"CREATE TABLE(?: IF NOT EXISTS)? {table} \((.*?)\n\);", sql, re.DOTALL)
        if create:
            for line in create.group(1).splitlines():
                m = re.match(r"\s*([a-z_]+)\s+([a-z]+)", line)
                if m and m.group(1) not in ("primary", "unique", "constraint", "check"):
                    columns[m.group(1)] = m.group(2)
        for m in re.finditer(
            rf"ALTER TABLE(?: IF EXISTS)? {table}\s+ADD COLUMN(?: IF NOT EXISTS)? "
            r"([a-z_]+) ([a-z]+)",
            sql,
        ):
            columns[m.group(1)] = m.group(2)
        for m in re.finditer(
            rf"ALTER TABLE(?: IF EXISTS)? {table}\s+DROP COLUMN(?: IF EXISTS)? ([a-z_]+)", sql
        ):
            columns.pop(m.group(1), None)
    return columns


def test_the_declaration_matches_the_migrations() -> None:
    migrated = _migrated_columns("district_daily")
    assert migrated, "district_daily not found in the migrations"
    keys = {"district": "text", "day": "date"}
    assert {k: migrated.pop(k) for k in keys} == keys
    assert set(migrated) == set(schema.COLUMNS), "declare each district_daily column once"
    for c in schema.DISTRICT_DAILY:
        assert migrated[c.name] in SQL_TYPES[c.unit], (c.name, migrated[c.name])
        assert (c.counts is not None) == (c.unit is schema.Unit.COUNT), c.name
        assert c.description, c.name


def test_every_column_list_derives_from_the_declaration() -> None:
    shown = [c.name for c in schema.DISTRICT_DAILY if c.shown]
    assert set(figures.COUNT_FIELDS + figures.WEIGHT_FIELDS + figures.MINUTE_FIELDS) == set(shown)
    additive = {c.name for c in schema.DISTRICT_DAILY if c.kind is schema.Kind.ADDITIVE}
    assert set(domain.INT_COLUMNS + domain.DECIMAL_COLUMNS) == additive
    # the visit-derived figures are recomputed, never added to
    assert {"visits", "unique_clients", "new_clients", "visits_completed"}.isdisjoint(additive)
    people = {c.name for c in schema.DISTRICT_DAILY if c.counts is schema.Counts.PEOPLE}
    assert set(suppression.PERSON_COUNTS) == people
    assert {"supplies_dispensed", "street_needles_count"}.isdisjoint(people)  # things
    assert set(reconcile.DISTRICT_COLUMNS) == {
        c.name for c in schema.DISTRICT_DAILY if c.unit in (schema.Unit.COUNT, schema.Unit.KG)
    }
    day_fields = set(responses.DayFigures.model_fields) - {"day"}
    assert day_fields == set(shown) | set(figures.BREAKDOWNS)


def test_metric_names_are_unique_and_prometheus_shaped() -> None:
    names = [
        n for c in schema.DISTRICT_DAILY for n in (c.metric.total, c.metric.today) if n is not None
    ]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"dcr_[a-z_]+", n) for n in names)
    for c in schema.DISTRICT_DAILY:
        assert (c.metric.total is None) == (not c.metric.total_help), c.name
        assert (c.metric.today is None) == (not c.metric.today_help), c.name


def test_room_daily_keeps_measures_as_rows() -> None:
    """A room measure needs no migration: room_daily is (facility, day, measure, key) -> amount,
    and the street table's amounts are the declared ones."""
    assert _migrated_columns("room_daily") == {
        "facility": "text",
        "day": "date",
        "measure": "text",
        "key": "text",
        "amount": "numeric",
    }
    street = _migrated_columns("street_collections_daily")
    assert {k: street.pop(k) for k in ("district", "area", "day")} == {
        "district": "text",
        "area": "text",
        "day": "date",
    }
    assert set(street) == set(schema.STREET_COLLECTIONS)
    for name, unit in schema.STREET_COLLECTIONS.items():
        assert street[name] in SQL_TYPES[unit], name
    assert set(responses.StreetCollection.model_fields) - {"day", "district", "area"} == set(
        schema.STREET_COLLECTIONS
    )


def test_room_lists_derive_from_the_declaration() -> None:
    declared = [m.name for m in schema.ROOM_TABLE]
    assert len(declared) == len(set(declared))
    assert schema.room_measures(source=schema.Source.ROOM_DAILY) == rooms.MEASURES
    assert set(rooms.KEYED_MEASURES) == {m.name for m in schema.ROOM_TABLE if m.keys}
    assert period_figures.VISIT_CELLS == period_queries.VISIT_FIGURES
    assert set(period_figures.VISIT_CELLS) == {
        "visits",
        "people",
        "new_people",
        "assisted_injections",
    }
    cells = period_figures.cell_names()
    assert len(cells) == len(set(cells))
    expected = set(declared) | {f"{m.name}.{k}" for m in schema.ROOM_TABLE for k in m.keys}
    assert set(cells) == expected
    for m in schema.ROOM_TABLE:
        for cell in [m.name, *(f"{m.name}.{k}" for k in m.keys)]:
            assert period_figures.is_person_cell(cell) is m.person_count, cell
    # every declared name appears in the read API's description of the cells
    assert all(name in responses.RoomDays.model_fields["days"].description for name in declared)


def test_keyed_measures_cover_their_vocabularies() -> None:
    vocabularies = {
        "refusals": v.RefusalReason,
        "referrals": v.ReferralKind,
        "services": v.OnSiteService,
        "supplies_dispensed": v.SupplyItem,
        "incidents": v.IncidentKind,
        "incident_outcomes": v.Outcome,
        "unexpected_substances": v.Substance,
    }
    assert {m.name: m.keys for m in schema.ROOM_TABLE if m.keys} == {
        name: tuple(k.value for k in vocab) for name, vocab in vocabularies.items()
    }
    # a keyed measure's total is the sum of its keys
    table = period_figures.complete(
        {"referrals.housing": Decimal(2), "referrals.medical_care": Decimal(3)}
    )
    assert table["referrals"] == 5
