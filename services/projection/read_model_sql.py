"""The SQL text that writes ``district_daily`` and ``facility_daily`` (run by :mod:`.store`),
generated once at import from their declaration (:mod:`.schema`), and ``city_daily``'s
figures, counted by the same visit rules.

No column of those tables is spelled out here or in :mod:`.store`: the additive upserts, the
recompute of the visit figures, their reset and the deletion of rows a retraction left empty all
list the declared columns. The one thing written per column is the rule of a recomputed figure
(:data:`VISIT_RULES`): how it is counted from a day's visits. Importing this module fails when a
recomputed column has no rule or a rule no column.

Pure: builds text, no I/O.
"""

from __future__ import annotations

from services.projection import schema
from services.projection.schema import Column, Kind, Unit

#: The rule of each recomputed column: an aggregate over ``v``, the started visits of one
#: (district or room, day), each with ``dur`` (end - start) and ``done`` (a plausible completed
#: visit: it ends at or after its start and at most the longest plausible visit later).
VISIT_RULES: dict[str, str] = {
    "visits": "count(*)",
    "unique_clients": "count(DISTINCT client_pseudonym)",
    "new_clients": "count(*) FILTER (WHERE first_visit)",
    "assisted_injections": "count(*) FILTER (WHERE assisted_injection)",
    "visits_completed": "count(*) FILTER (WHERE done)",
    "visit_minutes_median": "round(extract(epoch FROM percentile_cont(0.5) WITHIN GROUP "
    "(ORDER BY dur) FILTER (WHERE done)) / 60, 2)",
    "visit_minutes_mean": "CASE WHEN count(*) FILTER (WHERE done) > 0 THEN round(coalesce(sum("
    "extract(epoch FROM dur)) FILTER (WHERE done), 0) / count(*) FILTER (WHERE done) / 60, 2) END",
    "visit_seconds_total": "coalesce(sum(extract(epoch FROM dur)) FILTER (WHERE done), 0)",
}
if set(VISIT_RULES) != set(schema.names(kind=Kind.RECOMPUTED)):
    raise ImportError(
        "every recomputed district_daily column needs exactly one rule in VISIT_RULES: "
        f"{sorted(set(VISIT_RULES) ^ set(schema.names(kind=Kind.RECOMPUTED)))}"
    )

#: The SQL array type a column's values are sent as (``unnest`` of one array per column).
_ARRAY_TYPE = {
    Unit.COUNT: "bigint",
    Unit.KG: "numeric",
    Unit.MINUTES: "numeric",
    Unit.SECONDS: "numeric",
}


def _visit_rows(max_visit: str) -> str:
    """The select list of ``v`` (see :data:`VISIT_RULES`) over ``visits v``; ``max_visit`` is
    the placeholder of the longest plausible visit (an interval)."""
    return (
        "v.facility, v.district, v.day, v.client_pseudonym, v.first_visit, "
        "v.assisted_injection, v.route, v.substances, v.end_time - v.start_time AS dur, "
        "coalesce(v.end_time >= v.start_time "
        f"AND v.end_time - v.start_time <= {max_visit}::interval, false) AS done"
    )


def additive_upsert(table: str, key: str, columns: tuple[Column, ...]) -> str:
    """Add one delta per additive column to the rows of ``(key, day)``: ``$1`` keys, ``$2``
    days, then one array per additive column of ``columns`` in declaration order."""
    added = [c for c in columns if c.kind is Kind.ADDITIVE]
    names = ", ".join(c.name for c in added)
    arrays = ", ".join(f"${i + 3}::{_ARRAY_TYPE[c.unit]}[]" for i, c in enumerate(added))
    sums = ", ".join(f"{c.name} = {table}.{c.name} + EXCLUDED.{c.name}" for c in added)
    return (
        f"INSERT INTO {table} ({key}, day, {names}) "  # noqa: S608 - declared names only
        f"SELECT * FROM unnest($1::text[], $2::date[], {arrays}) "
        f"ON CONFLICT ({key}, day) DO UPDATE SET {sums}"
    )


def recomputed_upsert(table: str, key: str, columns: tuple[Column, ...]) -> str:
    """``INSERT ... SELECT`` of the recomputed columns of ``columns`` per (``key``, day) from
    ``v``, replacing what the rows held (only keys with at least one started visit). Grouped by
    (day, ``key``): the order ``visits_day_district`` returns the visits in, so an inlined
    ``v`` needs no sort before its groups."""
    recomputed = [c.name for c in columns if c.kind is Kind.RECOMPUTED]
    rules = ", ".join(VISIT_RULES[c] for c in recomputed)
    replace = ", ".join(f"{c} = EXCLUDED.{c}" for c in recomputed)
    return (
        f"INSERT INTO {table} ({key}, day, {', '.join(recomputed)}) "  # noqa: S608
        f"SELECT {key}, day, {rules} FROM v GROUP BY day, {key} "
        f"ON CONFLICT ({key}, day) DO UPDATE SET {replace}"
    )


def reset_recomputed(table: str, key: str, columns: tuple[Column, ...]) -> str:
    """Set the recomputed columns of the rows of ``$1`` keys and ``$2`` days to their empty
    value (0, or NULL for a median or mean)."""
    empty = ", ".join(
        f"{c.name} = {'NULL' if c.nullable else '0'}" for c in columns if c.kind is Kind.RECOMPUTED
    )
    return (
        f"UPDATE {table} t SET {empty} "  # noqa: S608 - declared names only
        "FROM unnest($1::text[], $2::date[]) AS k(key, day) "
        f"WHERE t.{key} = k.key AND t.day = k.day"
    )


def delete_empty(table: str, key: str, columns: tuple[Column, ...]) -> str:
    """Delete the rows of ``$1`` keys and ``$2`` days whose every figure is 0 (the nullable
    medians and means are NULL then: they have no completed visit to measure)."""
    zero = " AND ".join(f"t.{c.name} = 0" for c in columns if not c.nullable)
    return (
        f"DELETE FROM {table} t "  # noqa: S608 - declared names only
        "USING unnest($1::text[], $2::date[]) AS k(key, day) "
        f"WHERE t.{key} = k.key AND t.day = k.day AND {zero}"
    )


_DISTRICT, _FACILITY = schema.DISTRICT_DAILY, schema.FACILITY_DAILY

#: Add the deltas of a batch (or a retraction's negated ones): $1 districts, $2 days, then one
#: array per additive column.
DAILY_UPSERT = additive_upsert("district_daily", "district", _DISTRICT)
#: The same per room and day: $1 facilities, $2 days, one array per additive column.
FACILITY_UPSERT = additive_upsert("facility_daily", "facility", _FACILITY)


def daily_recompute(materialized: bool) -> str:
    """Recompute the visit figures of $1 districts x $2 days (pairwise) from ``visits`` ($3: the
    longest plausible visit), and the route/substance breakdown of the same visits (their old
    rows are deleted first).

    ``materialized``: ``v`` is read once into a tuplestore feeding both; else each reads the
    visits itself (two index scans). Measured on the 1M-event log (bench/NOTES.md, "visit
    figures recomputed faster"): read once is ~10 % cheaper for up to ~30 district-days, read
    twice ~20 % cheaper from ~100 (the tuplestore outgrows ``work_mem`` and is written to
    disk, then sorted again for the groups), so :data:`DAILY_RECOMPUTE` serves small sets and
    :data:`DAILY_RECOMPUTE_LARGE` sets of :data:`LARGE_RECOMPUTE` keys or more."""
    how = "MATERIALIZED" if materialized else "NOT MATERIALIZED"
    return f"""WITH k AS (SELECT * FROM unnest($1::text[], $2::date[]) AS k(district, day)),
v AS {how} (
    SELECT {_visit_rows("$3")}
    FROM visits v JOIN k USING (district, day)
    WHERE v.start_time IS NOT NULL),
daily AS ({recomputed_upsert("district_daily", "district", _DISTRICT)}),
g AS (SELECT district, day, route, substances, count(*) AS n FROM v GROUP BY 1, 2, 3, 4)
INSERT INTO district_daily_breakdown (district, day, dimension, key, n)
SELECT district, day, 'route', route, sum(n)::bigint FROM g GROUP BY 1, 2, 4
UNION ALL
SELECT district, day, 'substance', s, sum(n)::bigint
FROM g, unnest(g.substances) AS s GROUP BY 1, 2, 4"""  # noqa: S608 - declared names only


#: The fewest keys (district-days, or room-days) for which a recompute reads the visits twice
#: (:func:`daily_recompute`) and is planned for its arguments (``store.recompute_visit_figures``).
LARGE_RECOMPUTE = 100
#: :func:`daily_recompute` for fewer than :data:`LARGE_RECOMPUTE` district-days.
DAILY_RECOMPUTE = daily_recompute(materialized=True)
#: :func:`daily_recompute` for :data:`LARGE_RECOMPUTE` district-days or more.
DAILY_RECOMPUTE_LARGE = daily_recompute(materialized=False)

#: Recompute the visit figures of $1 facilities x $2 days (pairwise); $3 the distinct days and
#: $4 the distinct facilities (they narrow the scan of ``visits``), $5 the longest plausible
#: visit. ``v`` is read once, so inlined: materialised, the visits of a whole catch-up's days
#: were written to a tuplestore on disk first (0.30 against 0.74 s for the 1M-event log's
#: 1,300 room-days; faster for a few keys too).
FACILITY_RECOMPUTE = f"""WITH
k AS (SELECT * FROM unnest($1::text[], $2::date[]) AS k(facility, day)),
v AS (
    SELECT {_visit_rows("$5")}
    FROM visits v JOIN k USING (facility, day)
    WHERE v.day = ANY($3::date[]) AND v.facility = ANY($4::text[])
      AND v.start_time IS NOT NULL)
{recomputed_upsert("facility_daily", "facility", _FACILITY)}"""  # noqa: S608

#: Replace the city_daily rows of $1 days by their figures from ``visits`` ($2: the longest
#: plausible visit), counted by the same rules as a district's (:data:`VISIT_RULES`), in ONE
#: statement: days with started visits are upserted, the others' rows deleted (the two touch
#: disjoint days; the effect of deleting all, then inserting).
CITY_RECOMPUTE = f"""WITH fresh AS (
    SELECT day, {VISIT_RULES["unique_clients"]} AS unique_clients,
           {VISIT_RULES["visit_minutes_median"]} AS visit_minutes_median
    FROM (SELECT {_visit_rows("$2")} FROM visits v
          WHERE v.day = ANY($1::date[]) AND v.start_time IS NOT NULL) v
    GROUP BY day),
gone AS (
    DELETE FROM city_daily c
    WHERE c.day = ANY($1::date[]) AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.day = c.day))
INSERT INTO city_daily (day, unique_clients, visit_minutes_median)
SELECT day, unique_clients, visit_minutes_median FROM fresh ORDER BY day
ON CONFLICT (day) DO UPDATE
SET unique_clients = EXCLUDED.unique_clients,
    visit_minutes_median = EXCLUDED.visit_minutes_median"""  # noqa: S608 - declared names only

#: Zero the visit figures of $1 keys x $2 days (a recompute then sets those with visits left).
DAILY_RESET = reset_recomputed("district_daily", "district", _DISTRICT)
FACILITY_RESET = reset_recomputed("facility_daily", "facility", _FACILITY)
#: Delete the rows of $1 keys x $2 days that a retraction left empty.
DAILY_DELETE_EMPTY = delete_empty("district_daily", "district", _DISTRICT)
FACILITY_DELETE_EMPTY = delete_empty("facility_daily", "facility", _FACILITY)

_FIRST_START_WINS = ",\n    ".join(
    f"{c} = CASE WHEN visits.start_time IS NULL THEN EXCLUDED.{c} ELSE visits.{c} END"
    for c in schema.VISIT_START_FACTS
)


def keyed_sum_upsert(table: str, key: tuple[tuple[str, str], ...], amount: tuple[str, str]) -> str:
    """Add amounts to the rows of ``table`` keyed by ``key`` ((column, SQL type), ...): ``$1`` is
    ONE JSON document of ``[[key values...], amount]`` items (a dict's items, encoded by
    :func:`.store.rows_json`), written in key order."""
    names = ", ".join(k for k, _ in key)
    fields = ", ".join(f"(r->0->>{i})::{t}" for i, (_, t) in enumerate(key))
    column, sql_type = amount
    order = ", ".join(str(i + 1) for i in range(len(key)))
    return (
        f"INSERT INTO {table} ({names}, {column}) "  # noqa: S608 - declared names only
        f"SELECT {fields}, (r->>1)::{sql_type} FROM jsonb_array_elements($1::jsonb) AS r "
        f"ORDER BY {order} "
        f"ON CONFLICT ({names}) DO UPDATE SET {column} = {table}.{column} + EXCLUDED.{column}"
    )


#: Add a batch's breakdown counts: $1 items [[district, day, dimension, key], n].
BREAKDOWN_ADD = keyed_sum_upsert(
    "district_daily_breakdown",
    (("district", "text"), ("day", "date"), ("dimension", "text"), ("key", "text")),
    ("n", "bigint"),
)
#: Add a batch's room sums: $1 items [[facility, day, measure, key], amount].
ROOM_ADD = keyed_sum_upsert(
    "room_daily",
    (("facility", "text"), ("day", "date"), ("measure", "text"), ("key", "text")),
    ("amount", "numeric"),
)


def _fields_of(record: dict[str, str]) -> str:
    """The select list reading ``r``, one record of ``record``'s fields as a ``jsonb`` array
    (by position: PostgreSQL finds a field by name in each object of ``json_to_recordset``,
    7.4 against 5.4 us per visit start in psql; bench/NOTES.md), each cast to its type, named
    by its field. The records are written by :func:`.store.records_json`."""
    return ", ".join(
        f"ARRAY(SELECT jsonb_array_elements_text(r->{i})) AS {name}"
        if sql_type == "text[]"
        else f"(r->>{i})::{sql_type} AS {name}"
        for i, (name, sql_type) in enumerate(record.items())
    )


def insert_records(table: str, record: dict[str, str], *, all_new: bool = False) -> str:
    """Insert ``$1``, ONE JSON array of records (each the array of the values of ``record``'s
    fields, in its order: :func:`.store.records_json`), each field of the SQL type given there,
    into the columns of ``table`` of the same names; a row whose key is there already is left
    as it is (first wins: replays change nothing). ``all_new``: without ``ON CONFLICT``, for an
    optimistic attempt (a stored key fails it with a unique violation)."""
    return (
        f"INSERT INTO {table} ({', '.join(record)}) "  # noqa: S608 - declared names only
        f"SELECT {_fields_of(record)} FROM jsonb_array_elements($1::jsonb) AS r"
        + ("" if all_new else " ON CONFLICT DO NOTHING")
    )


#: A stock movement's record (:class:`.domain.StockMovement`).
STOCK_MOVEMENT_RECORD = {
    "source": "text",
    "id": "uuid",
    "item": "text",
    "facility": "text",
    "at": "timestamptz",
    "delta": "bigint",
}
#: A batch's stock movements.
STOCK_MOVEMENTS_INSERT = insert_records("stock_movements", STOCK_MOVEMENT_RECORD)
#: The same, every movement new (the optimistic attempt of :func:`.store.apply_changes`).
STOCK_MOVEMENTS_INSERT_ALL_NEW = insert_records(
    "stock_movements", STOCK_MOVEMENT_RECORD, all_new=True
)
#: A stock count report's record (:class:`.domain.StockCountReport`).
STOCK_COUNT_REPORT_RECORD = {
    "source": "text",
    "id": "uuid",
    "facility": "text",
    "item": "text",
    "counted_at": "timestamptz",
    "quantity": "bigint",
}
#: A batch's stock count reports.
STOCK_COUNT_REPORTS_INSERT = insert_records("stock_count_reports", STOCK_COUNT_REPORT_RECORD)
#: An alert's record (:class:`.domain.Alert`).
ALERT_RECORD = {
    "alert_id": "text",
    "episode": "text",
    "district": "text",
    "raised_at": "timestamptz",
    "reason": "text",
    "substance": "text",
    "facility_id": "text",
    "overdoses_in_window": "int",
    "window_start": "timestamptz",
    "window_end": "timestamptz",
    "late": "boolean",
}
#: A batch's alerts, once per alert id.
ALERTS_INSERT = insert_records("alerts", ALERT_RECORD)

#: The SQL type of each field of a visit start's JSON record (:class:`.domain.VisitStart`'s
#: fields, in this order, as a JSON array): the row's key, its district and the start facts.
VISIT_START_RECORD: dict[str, str] = {
    "facility": "text",
    "visit_id": "text",
    "district": "text",
    "day": "date",
    "start_time": "timestamptz",
    "client_pseudonym": "text",
    "pseudonym_key": "text",
    "route": "text",
    "substances": "text[]",
    "assisted_injection": "boolean",
    "first_visit": "boolean",
}
if set(VISIT_START_RECORD) != {"facility", "visit_id", "district", *schema.VISIT_START_FACTS}:
    raise ImportError("VISIT_START_RECORD must type exactly the key, district and start facts")
#: A visit end's JSON record (:class:`.domain.VisitEnd`'s fields, in this order, as an array).
VISIT_END_RECORD: dict[str, str] = {
    "facility": "text",
    "visit_id": "text",
    "district": "text",
    "end_time": "timestamptz",
}


_START_FIELDS = ", ".join(VISIT_START_RECORD)
_START_COLUMNS = ", ".join(f"s.{k}" for k in VISIT_START_RECORD)
#: A start's row written with its end of the same batch: first start wins (an end may have come
#: first and made the row: each start fact is taken from the new row only while the stored row
#: has no start), earliest end wins.
_START_CONFLICT = f"""ON CONFLICT (facility, visit_id) DO UPDATE
    SET {_FIRST_START_WINS},
        end_time = least(visits.end_time, EXCLUDED.end_time)
    WHERE visits.start_time IS NULL
       OR (EXCLUDED.end_time IS NOT NULL
           AND (visits.end_time IS NULL OR EXCLUDED.end_time < visits.end_time))"""  # noqa: S608


def _insert_starts(which: str, on_conflict: str) -> str:
    """Insert the starts of ``s`` (the upsert's row set) that ``which`` selects, each with its
    end of the same batch, in key order, with ``on_conflict``."""
    return (
        f"INSERT INTO visits ({_START_FIELDS}, end_time) "  # noqa: S608 - declared names only
        f"SELECT {_START_COLUMNS}, s.end_time FROM s WHERE {which} "
        f"ORDER BY s.facility, s.visit_id {on_conflict} "
        "RETURNING district, day, facility"
    )


#: Upsert a batch's visits: $1 a JSON array of the starts' records (each an array,
#: :data:`VISIT_START_RECORD`), $2 the end of each of those visits in this batch or NULL (an
#: array in the same order: zipped with the records by ``ROWS FROM``, no join), $3 a JSON array
#: of the other ends' records (:data:`VISIT_END_RECORD`), $4 how many of the starts (the first
#: ones) may meet a stored row. Those are upserted (:data:`_START_CONFLICT`); the others are
#: inserted without ``ON CONFLICT`` (cheaper: no probe of the key before each insert, no
#: confirmation after), which fails the whole statement with a unique violation if one of them
#: does meet a stored row: the caller then runs it again with $4 = all of them
#: (:func:`.store._visits`). An end alone makes the row (start facts NULL) or moves its end
#: earlier. The three inserts touch disjoint keys. Returns the distinct (district, day,
#: facility) whose visit figures changed.
UPSERT_VISITS = f"""WITH
s AS (SELECT {_fields_of(VISIT_START_RECORD)}, end_time, n
      FROM ROWS FROM (jsonb_array_elements($1::jsonb), unnest($2::timestamptz[]))
           WITH ORDINALITY AS x(r, end_time, n)),
starts AS ({_insert_starts("s.n <= $4", _START_CONFLICT)}),
fresh AS ({_insert_starts("s.n > $4", "")}),
ends AS (
    INSERT INTO visits (facility, visit_id, district, end_time)
    SELECT * FROM (SELECT {_fields_of(VISIT_END_RECORD)}
                   FROM jsonb_array_elements($3::jsonb) AS r) o
    ORDER BY facility, visit_id
    ON CONFLICT (facility, visit_id) DO UPDATE
    SET end_time = least(visits.end_time, EXCLUDED.end_time)
    WHERE visits.end_time IS NULL OR EXCLUDED.end_time < visits.end_time
    RETURNING district, day, facility)
SELECT DISTINCT district, day, facility
FROM (SELECT * FROM starts UNION ALL SELECT * FROM fresh UNION ALL SELECT * FROM ends) t
WHERE day IS NOT NULL"""  # noqa: S608 - declared names only

#: Undo voided starts ($1 facilities, $2 visit ids): a visit without an end is deleted, one
#: with a reported end keeps it with its start facts cleared; returns the (district, day,
#: facility) the starts counted in.
RETRACT_STARTS = f"""WITH
k AS (SELECT * FROM unnest($1::text[], $2::text[]) AS k(facility, visit_id)),
old AS (SELECT v.facility, v.visit_id, v.district, v.day FROM visits v
        JOIN k USING (facility, visit_id)),
gone AS (DELETE FROM visits v USING k
         WHERE v.facility = k.facility AND v.visit_id = k.visit_id AND v.end_time IS NULL),
orphaned AS (UPDATE visits v SET {", ".join(f"{c} = NULL" for c in schema.VISIT_START_FACTS)}
             FROM k WHERE v.facility = k.facility AND v.visit_id = k.visit_id
               AND v.end_time IS NOT NULL)
SELECT district, day, facility FROM old WHERE day IS NOT NULL"""  # noqa: S608
