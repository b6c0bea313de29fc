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
from services.projection import read_model_sql as sql
from shared.events import vocabulary as v
from shared.settings import REPO_ROOT

MIGRATIONS = REPO_ROOT / "deploy" / "postgres" / "migrations"
SQL_TYPES = {
    schema.Unit.COUNT: {"integer", "bigint"},
    schema.Unit.KG: {"numeric"},
    schema.Unit.MINUTES: {"numeric"},
    schema.Unit.SECONDS: {"numeric"},
}


def _migrated(table: str) -> dict[str, tuple[str, bool]]:
    """Column -> (SQL type, nullable) of ``table`` after every migration (CREATE TABLE, then
    ADD / DROP COLUMN)."""
    columns: dict[str, tuple[str, bool]] = {}
    for path in sorted(MIGRATIONS.glob("*.sql")):
        sql = re.sub(r"--[^\n]*", "", path.read_text())
        create = re.search(rf"CREATE TABLE(?: IF NOT EXISTS)? {table} \((.*?)\n\);", sql, re.DOTALL)
        if create:
            for line in create.group(1).splitlines():
                m = re.match(r"\s*([a-z_]+)\s+([a-z]+)(.*)", line)
                if m and m.group(1) not in ("primary", "unique", "constraint", "check"):
                    columns[m.group(1)] = (m.group(2), _nullable(m.group(3)))
        for m in re.finditer(
            rf"ALTER TABLE(?: IF EXISTS)? {table}\s+ADD COLUMN(?: IF NOT EXISTS)? "
            r"([a-z_]+) ([a-z]+)([^;,]*)",
            sql,
        ):
            columns[m.group(1)] = (m.group(2), _nullable(m.group(3)))
        for m in re.finditer(
            rf"ALTER TABLE(?: IF EXISTS)? {table}\s+DROP COLUMN(?: IF EXISTS)? ([a-z_]+)", sql
        ):
            columns.pop(m.group(1), None)
    return columns


def _nullable(definition: str) -> bool:
    return "NOT NULL" not in definition and "PRIMARY KEY" not in definition


def _migrated_columns(table: str) -> dict[str, str]:
    """Column -> SQL type of ``table`` after every migration."""
    return {name: sql_type for name, (sql_type, _) in _migrated(table).items()}


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


def test_facility_daily_and_the_nullable_figures_match_the_migrations() -> None:
    facility = _migrated_columns("facility_daily")
    assert {k: facility.pop(k) for k in ("facility", "day")} == {"facility": "text", "day": "date"}
    assert list(facility) == [c.name for c in schema.FACILITY_DAILY]
    for c in schema.FACILITY_DAILY:
        assert facility[c.name] in SQL_TYPES[c.unit], c.name
    nullable = {
        t: {n for n, (_, null) in _migrated(t).items() if null}
        for t in ("district_daily", "facility_daily")
    }
    assert nullable["district_daily"] == {c.name for c in schema.DISTRICT_DAILY if c.nullable}
    assert nullable["facility_daily"] == set()
    visits = _migrated_columns("visits")
    keys_and_end = {"facility", "visit_id", "district", "end_time"}
    assert set(visits) - keys_and_end == set(schema.VISIT_START_FACTS)
    # a visit start's JSON record is read with the types of the columns it fills
    assert {k: t.removesuffix("[]") for k, t in sql.VISIT_START_RECORD.items()} == {
        k: visits[k] for k in sql.VISIT_START_RECORD
    }


def _listed(statement: str, before: str, after: str) -> list[str]:
    """The comma-separated names between ``before`` and ``after`` in ``statement``."""
    start = statement.index(before) + len(before)
    return [n.strip() for n in statement[start : statement.index(after, start)].split(",")]


def _named(statement: str) -> set[str]:
    """Every declared district_daily column ``statement`` names."""
    return {c for c in schema.COLUMNS if re.search(rf"\b{c}\b", statement)}


def test_the_generated_sql_names_exactly_the_declared_columns() -> None:
    additive = [c.name for c in schema.DISTRICT_DAILY if c.kind is schema.Kind.ADDITIVE]
    recomputed = [c.name for c in schema.DISTRICT_DAILY if c.kind is schema.Kind.RECOMPUTED]
    f_additive = [c.name for c in schema.FACILITY_DAILY if c.kind is schema.Kind.ADDITIVE]
    f_recomputed = [c.name for c in schema.FACILITY_DAILY if c.kind is schema.Kind.RECOMPUTED]
    daily = "INSERT INTO district_daily (district, day, "
    assert _listed(sql.DAILY_UPSERT, daily, ")") == additive
    assert _named(sql.DAILY_UPSERT) == set(additive)
    assert _listed(sql.DAILY_RECOMPUTE, daily, ")") == recomputed
    # the recompute of many district-days differs only in reading the visits twice
    assert sql.DAILY_RECOMPUTE_LARGE.replace("NOT MATERIALIZED", "MATERIALIZED") == (
        sql.DAILY_RECOMPUTE
    )
    assert "NOT MATERIALIZED" in sql.DAILY_RECOMPUTE_LARGE
    facility = "INSERT INTO facility_daily (facility, day, "
    assert _listed(sql.FACILITY_UPSERT, facility, ")") == f_additive
    assert _listed(sql.FACILITY_RECOMPUTE, facility, ")") == f_recomputed
    assert _named(sql.FACILITY_UPSERT) == set(f_additive)
    # a reset empties the recomputed figures: 0, or NULL for a median or mean
    resets = _listed(sql.DAILY_RESET, " SET ", " FROM ")
    assert resets == [
        f"{c.name} = {'NULL' if c.nullable else '0'}"
        for c in schema.DISTRICT_DAILY
        if c.kind is schema.Kind.RECOMPUTED
    ]
    assert _listed(sql.FACILITY_RESET, " SET ", " FROM ") == [f"{c} = 0" for c in f_recomputed]
    # an empty row: every figure that cannot be NULL is 0
    assert _named(sql.DAILY_DELETE_EMPTY) == {
        c.name for c in schema.DISTRICT_DAILY if not c.nullable
    }
    assert set(re.findall(r"t\.([a-z_]+) = 0", sql.FACILITY_DELETE_EMPTY)) == set(
        f_additive + f_recomputed
    )
    # the visits' start facts, first start wins, cleared by a void
    for fact in schema.VISIT_START_FACTS:
        assert f"{fact} = CASE WHEN visits.start_time IS NULL" in sql.UPSERT_VISITS, fact
        assert f"{fact} = NULL" in sql.RETRACT_STARTS, fact


def test_every_recomputed_column_has_exactly_one_rule() -> None:
    assert set(sql.VISIT_RULES) == set(schema.names(kind=schema.Kind.RECOMPUTED))


def test_a_declared_figure_reaches_every_statement() -> None:
    """Adding a figure is one declaration (plus its migration and the projector's rule): the
    statements built from a declaration with one more column write, empty and drop it too."""
    extra = schema.Column(
        "syringes_swapped", schema.Kind.ADDITIVE, schema.Unit.COUNT, "x", schema.Counts.THINGS
    )
    declared = (*schema.DISTRICT_DAILY, extra)
    assert "syringes_swapped = district_daily.syringes_swapped + EXCLUDED.syringes_swapped" in (
        sql.additive_upsert("district_daily", "district", declared)
    )
    assert "t.syringes_swapped = 0" in sql.delete_empty("district_daily", "district", declared)
    assert "syringes_swapped" not in sql.reset_recomputed("district_daily", "district", declared)
    # and a Column of the real declaration is in the statements already built
    assert all(
        re.search(rf"\b{c.name}\b", sql.DAILY_UPSERT + sql.DAILY_RECOMPUTE)
        for c in schema.DISTRICT_DAILY
    )
