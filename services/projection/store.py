"""PostgreSQL side of the projection: offsets, dedup and read-model writes (asyncpg, set-based).

Every function taking ``conn`` runs inside the caller's transaction; one batch of records is one
transaction: fence offsets, lock districts, claim event ids, apply changes, save offsets.
Statements are set-based: the number of round trips per batch is fixed, whatever its size.

Transport (issue 18, measured by ``python -m bench.transport``, medians of 5 rounds in
bench/results/issue18/transport.json, read in transport.md there): the statements with a row
per event (the claim, the visits, stock movements and count reports, alerts) receive their rows
as ONE JSON document each, encoded by msgspec in C (:func:`rows_json`): the domain's slotted
dataclasses as they are (``json_to_recordset`` names and types their fields), the claim's rows
as arrays (``jsonb``).
asyncpg encodes a typed array parameter element by element in Python-level code (about 22
ABC checks per event), and the arrays had to be built one list per column: for a 20,000-event
batch this cut the Python CPU of the claim from 13.2 to 8.0 us per event and of the visit
starts from 15.8 to 3.8 us per start. PostgreSQL's share of the call (wall minus Python CPU:
typed arrays and ``jsonb`` are converted at bind time, which the executor statistics do not
count) went from 10.4 to 18.0 us per event for the claim (``jsonb`` and base64 parsing) and
stayed at ~16 us per start for the visits, PostgreSQL running on the other core while Python is
the bound. Binary COPY into a temporary table was as cheap in Python for the claim and ~3.6 us
cheaper in PostgreSQL, but needs two more round trips per statement; ``json`` with ``->>``
re-parses the text per field (about twice the wall time).

The claim's rows leave the events' values out: they follow as ONE ``bytea`` parameter, each row
saying where its value starts and its length (base64 inside the JSON made PostgreSQL parse 4/3
of every value as JSON text at bind time). Its arguments are built before the transaction
(:class:`ClaimArguments`, :func:`claim_argument_steps`), while the previous batches'
transactions run.

The room and breakdown sums (dicts keyed by tuples) go as ``jsonb`` arrays of [key, amount]
items; the district and facility day sums (a few hundred rows per batch) keep ``unnest`` of
arrays. The independent additive writes of a batch (each to its own table) are sent as ONE
statement (:func:`run_together`): a round trip waits for the event loop, busy decoding the next
batch meanwhile (consumer.Projector.run), so fewer of them shorten the transaction.

Exactness: decimals go as JSON numbers with their digits, bytes as base64 (``decode(...,
'base64')``), instants as RFC 3339 with their offset, dates as ISO dates, None as null
(tests/integration/projection/test_store_transport.py).

Concurrency (several instances in one group): each batch first locks the offset rows of its
partitions (``FOR UPDATE``; a partition whose stored offset is not the one this instance expects
was taken over and is skipped) and then takes a transaction advisory lock per district it writes,
in sorted order, so recomputes of the same (district, day) never interleave and lock order is
the same everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from prometheus_client import Counter

from services.projection import read_model_sql as sql
from services.projection.domain import DEFAULT_MAX_VISIT, Changes, Decoded, Retraction
from services.projection.erasure import ERASED_KEY, erased_digest
from services.projection.metrics import CLAIM_FALLBACKS, STOCK_FALLBACKS, VISIT_FALLBACKS
from services.projection.schema import DISTRICT_DAILY, FACILITY_DAILY, Kind, Unit
from services.projection.steps import AT_ONCE, Steps, finish
from shared.events.fast_decode import Event, decode
from shared.events.views import VISIT_STARTED, VisitStartedView

#: Advisory lock namespaces (two-int4 form; never overlaps shared.db.migrate's bigint key).
DISTRICT_LOCK_NS = 0x0DC2
REBUILD_LOCK_NS = 0x0DC3
CITY_LOCK_NS = 0x0DC4

TopicPartitionKey = tuple[str, int]
T = TypeVar("T")

#: Read-model tables, in the order a rebuild truncates them (and the tests compare them).
READ_MODEL_TABLES: tuple[str, ...] = (
    "district_daily",
    "district_daily_breakdown",
    "facility_daily",
    "city_daily",
    "facility_state",
    "visits",
    "stock_movements",
    "stock_counts",
    "stock_count_reports",
    "alerts",
    "room_daily",  # rooms_store (issue 15)
    "street_collections_daily",
    "projection_events",
    "projection_voids",
    "visit_figures_pending",
)

Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

#: Encodes the rows of a statement as one JSON document (see the module doc): decimals as JSON
#: numbers with their exact digits, bytes as base64, datetimes as RFC 3339 with their offset,
#: dates as ISO dates, dataclasses as objects with their field names, tuples as arrays.
_ROWS = msgspec.json.Encoder(decimal_format="number")


def rows_json(rows: object) -> str:
    """``rows`` as one JSON document, for a ``$n::json`` / ``$n::jsonb`` parameter."""
    return _ROWS.encode(rows).decode()


def records_json(rows: Iterable[object], record: Mapping[str, str]) -> str:
    """``rows`` as ONE JSON array of records, each the array of its attributes named in
    ``record`` (two or more), in that order: what :func:`.read_model_sql.insert_records` and
    :data:`.read_model_sql.UPSERT_VISITS` read by position. A row without one of them raises
    AttributeError (a field read by name would silently have been NULL)."""
    return rows_json(list(map(attrgetter(*record), rows)))


def json_steps(
    rows: Sequence[object], step: int, record: Mapping[str, str] | None = None
) -> Steps[str]:
    """:func:`rows_json` of ``rows`` (``record`` given: :func:`records_json`), encoded ``step``
    rows at a time: the same text (msgspec writes no spaces, so the slices' arrays joined by
    commas are the whole array). A 15,000-record array took ~20-30 ms in one call, during
    which the event loop of the projector answered no statement."""
    get = attrgetter(*record) if record is not None else None
    parts: list[bytes] = []
    for i in range(0, len(rows), step):
        chunk = rows[i : i + step]
        parts.append(_ROWS.encode(list(map(get, chunk)) if get else chunk)[1:-1])
        yield
    return (b"[" + b",".join(parts) + b"]").decode()


# --- offsets ----------------------------------------------------------------------------------


async def load_offsets(
    conn: Conn,
    group: str,
    tps: Iterable[TopicPartitionKey],
    log_start: Mapping[TopicPartitionKey, int] | None = None,
) -> dict[TopicPartitionKey, int]:
    """Stored next offsets of ``tps`` for ``group``, creating missing rows at offset 0; a stored
    offset below the partition's ``log_start`` (records deleted by retention) is raised to it."""
    topics, parts = _split(tps)
    if log_start:
        keys = sorted(log_start)
        await conn.execute(
            """INSERT INTO projection_offsets (consumer_group, topic, partition, next_offset)
               SELECT $1, t, p, n FROM unnest($2::text[], $3::int[], $4::bigint[]) AS u(t, p, n)
               ON CONFLICT (consumer_group, topic, partition) DO UPDATE
               SET next_offset = EXCLUDED.next_offset
               WHERE projection_offsets.next_offset < EXCLUDED.next_offset""",
            group,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [log_start[k] for k in keys],
        )
    rows = await conn.fetch(
        """WITH ins AS (
               INSERT INTO projection_offsets (consumer_group, topic, partition, next_offset)
               SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int[]) AS u(t, p)
               ON CONFLICT DO NOTHING)
           SELECT u.t AS topic, u.p AS partition, coalesce(o.next_offset, 0) AS next_offset
           FROM unnest($2::text[], $3::int[]) AS u(t, p)
           LEFT JOIN projection_offsets o
             ON o.consumer_group = $1 AND o.topic = u.t AND o.partition = u.p""",
        group,
        topics,
        parts,
    )
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def lock_offsets(
    conn: Conn, group: str, tps: Iterable[TopicPartitionKey]
) -> dict[TopicPartitionKey, int]:
    """Lock and return the stored next offsets of ``tps`` (missing rows are absent)."""
    topics, parts = _split(sorted(tps))
    rows = await conn.fetch(
        """SELECT o.topic, o.partition, o.next_offset
           FROM projection_offsets o
           JOIN unnest($2::text[], $3::int[]) AS u(t, p) ON o.topic = u.t AND o.partition = u.p
           WHERE o.consumer_group = $1
           ORDER BY o.topic, o.partition
           FOR UPDATE OF o""",
        group,
        topics,
        parts,
    )
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def save_offsets(
    conn: Conn, group: str, positions: Mapping[TopicPartitionKey, tuple[int, datetime]]
) -> None:
    """Store the next offset (and last record time) of each partition applied in this batch."""
    keys = sorted(positions)
    await conn.execute(
        """UPDATE projection_offsets o
           SET next_offset = u.n, last_record_time = u.ts
           FROM unnest($2::text[], $3::int[], $4::bigint[], $5::timestamptz[]) AS u(t, p, n, ts)
           WHERE o.consumer_group = $1 AND o.topic = u.t AND o.partition = u.p""",
        group,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [positions[k][0] for k in keys],
        [positions[k][1] for k in keys],
    )


async def reset(
    conn: Conn,
    group: str,
    zone: ZoneInfo | None = None,
    max_visit: timedelta = DEFAULT_MAX_VISIT,
) -> None:
    """Empty every read model and forget ``group``'s offsets (rebuild).

    After retention sealed some days (``retention_state``, needs ``zone``), their aggregate
    rows, stock movements and counts, alerts and the facilities' last event times are kept:
    Kafka no longer holds their events, and the replay refuses events of sealed days.

    Erased people's anonymised visit rows (``pseudonym_key`` = :data:`ERASED_KEY`) are kept
    and their days' visit figures recomputed at once: the replay of their starts is a no-op
    (first start wins), so the erasure survives and the aggregates stay as they were."""
    sealed = await conn.fetchval(
        "SELECT sealed_before FROM retention_state WHERE singleton FOR UPDATE"
    )
    erased = await conn.fetch("SELECT * FROM visits WHERE pseudonym_key = $1", ERASED_KEY)
    if sealed is None or zone is None:
        await conn.execute(f"TRUNCATE {', '.join(READ_MODEL_TABLES)}")
    else:
        cut = datetime.combine(sealed, time(0), tzinfo=zone)
        for table in (
            "district_daily",
            "district_daily_breakdown",
            "facility_daily",
            "city_daily",
            "room_daily",
            "street_collections_daily",
        ):
            await conn.execute(f"DELETE FROM {table} WHERE day >= $1", sealed)  # noqa: S608
        await conn.execute("DELETE FROM stock_movements WHERE at >= $1", cut)
        await conn.execute("DELETE FROM stock_counts WHERE counted_at >= $1", cut)
        await conn.execute("DELETE FROM stock_count_reports WHERE counted_at >= $1", cut)
        await conn.execute("DELETE FROM alerts WHERE raised_at >= $1", cut)
        await conn.execute(
            "TRUNCATE visits, visit_figures_pending, projection_events, projection_voids"
        )
    await conn.execute("DELETE FROM projection_offsets WHERE consumer_group = $1", group)
    if erased:
        await conn.copy_records_to_table(
            "visits", records=[tuple(r.values()) for r in erased], columns=list(erased[0].keys())
        )
        dated = [
            r for r in erased if r["day"] is not None and (sealed is None or r["day"] >= sealed)
        ]
        await recompute_visit_figures(
            conn,
            {(r["district"], r["day"]) for r in dated},
            {(r["facility"], r["day"]) for r in dated},
            max_visit,
        )


async def sealed_before(conn: Conn) -> date | None:
    """The first local day retention has not sealed (None: nothing sealed). Locked FOR SHARE
    until commit, so the retention job cannot seal a day while a batch writes to it."""
    day: date | None = await conn.fetchval(
        "SELECT sealed_before FROM retention_state WHERE singleton FOR SHARE"
    )
    return day


# --- dedup and locks --------------------------------------------------------------------------


async def lock_districts(conn: Conn, districts: Iterable[str]) -> None:
    """Serialise writers per district until commit (sorted: every transaction, same order)."""
    ordered = sorted(set(districts))
    if ordered:
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext(d)) FROM unnest($2::text[]) AS d",
            DISTRICT_LOCK_NS,
            ordered,
        )


@dataclass(frozen=True, slots=True)
class ClaimArguments:
    """The claim statement's arguments for a batch's unique events (:func:`claim_arguments`).

    Pure values, built before the batch's transaction opens (the projector builds them while
    the previous batch's transaction runs: PostgreSQL does not wait for this Python)."""

    #: The (source, id) keys claimed, in the order of ``rows``.
    keys: frozenset[tuple[str, str]]
    #: $1 of :data:`CLAIM`.
    rows: str
    #: $3 of :data:`CLAIM`: the values one after the other.
    values: bytes


def claim_arguments(events: Sequence[Decoded]) -> ClaimArguments:
    """The arguments of :data:`CLAIM` for ``events`` (unique keys). Pure."""
    return finish(claim_argument_steps(events, AT_ONCE))


def claim_argument_steps(
    events: Sequence[Decoded], step: int, keys: frozenset[tuple[str, str]] | None = None
) -> Steps[ClaimArguments]:
    """:func:`claim_arguments` in steps of ``step`` events (rows built, then encoded), so a
    caller can yield to its event loop between steps (:mod:`.steps`). ``keys``: the events'
    (source, id) keys, when the caller has them already. Pure."""
    digest = _pseudonym_digest
    rows: list[tuple[Any, ...]] = []
    values: list[bytes] = []
    start = 1  # where the next value starts in $3 (1-based)
    for i in range(0, len(events), step):
        for d in events[i : i + step]:
            value = d.record.value or b""  # a decoded event always has a value
            length = len(value)
            event = d.event
            rows.append(
                (*d.dedup_key, event.type, event.time, start, length, d.schema_version, digest(d))
            )
            values.append(value)
            start += length
        yield
    # In key order: neighbouring rows go to neighbouring primary-key pages (fewer page
    # visits than the log's random uuid order). The rows are sorted, not the events: a key
    # read in C, not a Python function per event; each row names its value's place in $3.
    rows.sort(key=_CLAIM_ORDER)
    if keys is None:
        keys = dedup_keys(events)
    yield
    encoded = yield from json_steps(rows, step)
    return ClaimArguments(keys, encoded, b"".join(values))


async def claim_events(
    conn: Conn, events: Sequence[Decoded] | ClaimArguments
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Record the events' (source, id) (``events`` or their :func:`claim_arguments`); return
    the keys not applied before (to apply now) and, among those, the keys a void applied
    earlier names (never to be applied: the void came first). One statement: the voids are
    looked up for the newly claimed keys only.

    Optimistic (issue 18): the keys are first inserted by a plain ``INSERT`` in a savepoint
    (:data:`CLAIM_ALL_NEW`), which in a catch-up almost always succeeds (every key new); a
    key claimed before fails it with a unique violation, and the savepoint is rolled back
    (nothing of the attempt stays) and the batch claimed by :data:`CLAIM` (``ON CONFLICT DO
    NOTHING``). The result is the same either way. ``ON CONFLICT`` makes
    PostgreSQL probe the key's index before inserting and confirm every row afterwards: in
    psql 1.2-2.3x the plain insert's time (bench/results/issue18/s10/claim-insert.txt); in
    catch-up replays the claim's executor time fell from 9.9-11.5 to 7.2-8.1 us per event.

    Only batches of at least :data:`OPTIMISTIC_MIN_ROWS` events take that path: the savepoint
    costs a round trip (``SAVEPOINT``; it is not released, see :func:`_attempt`), more than
    ``ON CONFLICT`` costs a live batch of a few events (~4 us per row; bench/NOTES.md, "an
    optimistic claim").

    Call it after the batch's district locks: a void of the same room (same district) committed
    by another instance is then visible to this statement's snapshot. Another instance's claim
    of the same key, not yet committed, makes either statement wait for its outcome."""
    claim = events if isinstance(events, ClaimArguments) else claim_arguments(events)
    if not claim.keys:
        return set(), set()
    args = (claim.rows, len(claim.keys), claim.values)
    row = None
    if len(claim.keys) >= OPTIMISTIC_MIN_ROWS:  # some key claimed before: a replay, a retry
        row = await _attempt(conn, CLAIM_FALLBACKS, lambda: conn.fetchrow(CLAIM_ALL_NEW, *args))
    if row is None:
        row = await conn.fetchrow(CLAIM, *args)
    assert row is not None  # an aggregate: always one row
    voided = _keys(row["voided_sources"], row["voided_ids"])
    if row["claimed"] == len(claim.keys):  # all new (the common case): no key sent back
        return set(claim.keys), voided
    return _keys(row["new_sources"], row["new_ids"]), voided


def _keys(sources: list[str] | None, ids: list[Any] | None) -> set[tuple[str, str]]:
    """(source, id) keys from two parallel arrays (NULL: none)."""
    return set(zip(sources or (), map(str, ids or ()), strict=True))


#: Claim events: $1 a JSON array of rows [source, id, type, time, where the event's value starts
#: in $3 (1-based), its length, schema version, erasure digest (base64) or null], $2 their
#: number, $3 the values one after the other (one ``bytea``, bound as it is: inside the ``jsonb``
#: document, as base64, PostgreSQL parsed 4/3 of every value as JSON text; see
#: ``python -m bench.transport``, variant ``jsonb_rows_blob``). Returns ONE row: how many were
#: claimed now, their keys only when that is fewer than $2 (a replay or a retry: in the common
#: case, all new, no key is sent back, sparing the decoding of a row per event), and the claimed
#: keys a void applied earlier names. An erased person's event is claimed without its value.
#: The key arrays are gated by a one-time filter on the count (``WHERE (SELECT n ...) < $2``),
#: not by ``HAVING``: with ``HAVING`` both arrays of all the keys were built and then thrown
#: away, ~30 ms per 40,000 events (EXPLAIN ANALYZE, bench/results/issue18/s8/).
#: jsonb, not json: ``->>`` on a json value parses its text again for every field.
_CLAIM_TEMPLATE = """WITH new AS (
    INSERT INTO projection_events (source, id, type, time, value, schema_version)
    SELECT s, i, t, tm,
           CASE WHEN dg IS NOT NULL
                     AND EXISTS (SELECT 1 FROM erased_pseudonyms e WHERE e.digest = dg)
                THEN NULL ELSE v END,
           sv
    FROM (SELECT r->>0 AS s, (r->>1)::uuid AS i, r->>2 AS t, (r->>3)::timestamptz AS tm,
                 substring($3::bytea FROM (r->>4)::int FOR (r->>5)::int) AS v,
                 (r->>6)::smallint AS sv, decode(r->>7, 'base64') AS dg
          FROM jsonb_array_elements($1::jsonb) AS r) u
    {on_conflict}
    RETURNING source, id),
voided AS (
    SELECT new.source, new.id
    FROM new JOIN projection_voids v ON v.source = new.source AND v.target_id = new.id),
counted AS (SELECT count(*) AS n FROM new)
SELECT (SELECT n FROM counted) AS claimed,
       (SELECT array_agg(source) FROM new WHERE (SELECT n FROM counted) < $2) AS new_sources,
       (SELECT array_agg(id) FROM new WHERE (SELECT n FROM counted) < $2) AS new_ids,
       (SELECT array_agg(source) FROM voided) AS voided_sources,
       (SELECT array_agg(id) FROM voided) AS voided_ids"""
CLAIM = _CLAIM_TEMPLATE.format(on_conflict="ON CONFLICT DO NOTHING")
#: The fewest rows an optimistic insert is tried for (the claim's :data:`CLAIM_ALL_NEW`, the
#: fresh visit starts of :func:`_visits`): ``ON CONFLICT`` costs ~4 us more per row, the
#: savepoint ~0.5-1 ms per batch.
OPTIMISTIC_MIN_ROWS = 500


async def _attempt(
    conn: Conn, fallbacks: Counter, statement: Callable[[], Awaitable[T]]
) -> T | None:
    """Run an optimistic insert (one without ``ON CONFLICT``) in a savepoint: its result, or
    None when it met a stored key (a unique violation; the savepoint rolled back, so nothing of
    the attempt stays, and ``fallbacks`` counted): the caller then runs its ``ON CONFLICT``
    statement, whose result is the same.

    In a transaction the savepoint is not released when the insert succeeds: it ends with the
    transaction, and the statements after it run inside it (a rollback to a later savepoint of
    the same name undoes only what followed that one). A release was one round trip more per
    attempt, three per catch-up batch, each waiting for the event loop (busy decoding the next
    batch). Outside a transaction, the statement's own transaction is its savepoint."""
    try:
        if not conn.is_in_transaction():
            async with conn.transaction():
                return await statement()
        await conn.execute(f"SAVEPOINT {_OPTIMISTIC}")
        try:
            return await statement()
        except asyncpg.UniqueViolationError:
            await conn.execute(f"ROLLBACK TO SAVEPOINT {_OPTIMISTIC}")
            raise
    except asyncpg.UniqueViolationError:
        fallbacks.inc()
        return None


#: The name of :func:`_attempt`'s savepoints (a new one hides an older one of the same name).
_OPTIMISTIC = "optimistic_insert"


#: :data:`CLAIM` without ``ON CONFLICT``: fails with a unique violation if any key was claimed
#: before (see :func:`claim_events`); when it succeeds, every key is new.
CLAIM_ALL_NEW = _CLAIM_TEMPLATE.format(on_conflict="")


#: A decoded event's (source, id), read in C.
_DEDUP_KEY = attrgetter("dedup_key")


def dedup_keys(events: Iterable[Decoded]) -> frozenset[tuple[str, str]]:
    """The (source, id) keys of ``events`` (read in C, no Python function per event)."""
    return frozenset(map(_DEDUP_KEY, events))


#: The order a claim inserts its rows in: by id (the leading column of ``projection_events``'
#: key, (id, source); canonical UUID text sorts as the UUIDs do). A single text key: sorting
#: 40,000 rows by it took a third of the time a (id, source) tuple did (0.30 against 0.88 us
#: per row). Rows of one id under two sources (never from the ingest services, which mint a
#: random id per report) keep the batch's order: the order only spares page visits.
_CLAIM_ORDER = itemgetter(1)


def _pseudonym_digest(d: Decoded) -> bytes | None:
    """The erasure digest of the pseudonym a visit start carries (None for other events): an
    erased person's event is claimed without its value, so no copy of the pseudonym is kept."""
    if d.event.type == VISIT_STARTED:
        data = cast(VisitStartedView, d.event.data)
        return erased_digest(data.pseudonym_key, data.client_pseudonym)
    return None


async def record_voids(
    conn: Conn, voids: Sequence[Decoded], skip: AbstractSet[tuple[str, str]]
) -> list[Event]:
    """Record the voids (the first per target wins); return the already-applied events they
    newly retract, decoded from ``projection_events`` (to undo: see :func:`retract`). Targets in
    ``skip`` (claimed in this batch, so never applied) are not returned."""
    if not voids:
        return []
    rows = await conn.fetch(
        """WITH new AS (
               INSERT INTO projection_voids (source, target_id, void_id, reason, time)
               SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[],
                                    $5::timestamptz[])
               ON CONFLICT DO NOTHING
               RETURNING source, target_id)
           SELECT e.source, e.id, e.type, e.time, e.value, e.schema_version
           FROM new JOIN projection_events e ON e.source = new.source AND e.id = new.target_id
           WHERE e.value IS NOT NULL AND e.type <> 'dk.dcr.report.voided'
           ORDER BY e.time, e.source, e.id""",
        [d.event.source for d in voids],
        [d.event.data.target_id for d in voids],  # type: ignore[attr-defined]
        [d.event.id for d in voids],
        [d.event.data.reason.value for d in voids],  # type: ignore[attr-defined]
        [d.event.time for d in voids],
    )
    return [_stored_event(r) for r in rows if (r["source"], str(r["id"])) not in skip]


def _stored_event(r: asyncpg.Record) -> Event:
    """An event as kept in ``projection_events`` (value and schema version), decoded by the hot
    path's decoder, as new records are (domain.same_event compares the two)."""
    return decode(
        [
            ("ce_specversion", b"1.0"),
            ("ce_id", str(r["id"]).encode()),
            ("ce_source", r["source"].encode()),
            ("ce_type", r["type"].encode()),
            ("ce_time", r["time"].isoformat().encode()),
            ("ce_schemaversion", str(r["schema_version"]).encode()),
            ("content-type", b"application/json"),
        ],
        bytes(r["value"]),
    )


async def stored_events(
    conn: Conn, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Event | None]:
    """The applied events with these (source, id) keys where their value was kept; None for a
    key marked conflicted (:func:`mark_conflicted`)."""
    ks = sorted(keys)
    if not ks:
        return {}
    rows = await conn.fetch(
        """SELECT e.source, e.id, e.type, e.time, e.value, e.schema_version
           FROM projection_events e
           JOIN unnest($1::text[], $2::uuid[]) AS k(source, id)
             ON e.source = k.source AND e.id = k.id
           WHERE e.value IS NOT NULL OR e.type = $3""",
        [k[0] for k in ks],
        [k[1] for k in ks],
        CONFLICTED,
    )
    return {
        (r["source"], str(r["id"])): None if r["type"] == CONFLICTED else _stored_event(r)
        for r in rows
    }


#: projection_events.type of a (source, id) seen with two different events: none of them
#: counts, whatever the order they arrive in (``time`` = the earliest of their times).
CONFLICTED = "conflicted"


async def mark_conflicted(conn: Conn, times: Mapping[tuple[str, str], datetime]) -> None:
    """Mark these claimed keys conflicted (see :data:`CONFLICTED`)."""
    ks = sorted(times)
    if ks:
        await conn.execute(
            """UPDATE projection_events e SET type = $4, value = NULL, schema_version = NULL,
                      time = least(e.time, k.t)
               FROM unnest($1::text[], $2::uuid[], $3::timestamptz[]) AS k(source, id, t)
               WHERE e.source = k.source AND e.id = k.id""",
            [k[0] for k in ks],
            [k[1] for k in ks],
            [times[k] for k in ks],
            CONFLICTED,
        )


async def retract(conn: Conn, r: Retraction, max_visit: timedelta = DEFAULT_MAX_VISIT) -> None:
    """Undo voided events that were applied (see :func:`services.projection.domain.retraction`):
    negated sums, their visit rows and stock movements removed, the visit figures of their days
    recomputed; rows left at zero are deleted, so the tables equal those of a log in which the
    events were never reported."""
    await run_together(conn, _sums(r.changes))
    touched: list[asyncpg.Record] = []
    if r.visit_starts:
        touched += await conn.fetch(
            sql.RETRACT_STARTS,
            [k[0] for k in r.visit_starts],
            [k[1] for k in r.visit_starts],
        )
    if r.visit_ends:
        touched += await conn.fetch(
            """WITH k AS (SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
                          AS k(facility, visit_id, end_time)),
               gone AS (DELETE FROM visits v USING k
                        WHERE v.facility = k.facility AND v.visit_id = k.visit_id
                          AND v.end_time = k.end_time AND v.start_time IS NULL)
               UPDATE visits v SET end_time = NULL FROM k
               WHERE v.facility = k.facility AND v.visit_id = k.visit_id
                 AND v.end_time = k.end_time AND v.start_time IS NOT NULL
               RETURNING v.district, v.day, v.facility""",
            [k[0] for k in r.visit_ends],
            [k[1] for k in r.visit_ends],
            [k[2] for k in r.visit_ends],
        )
    if r.stock_movements:
        await conn.execute(
            """DELETE FROM stock_movements m USING unnest($1::text[], $2::uuid[]) AS k(s, i)
               WHERE m.source = k.s AND m.id = k.i""",
            [k[0] for k in r.stock_movements],
            [k[1] for k in r.stock_movements],
        )
    if r.stock_counts:
        await _retract_stock_counts(conn, r.stock_counts)
    day_keys = {(t["district"], t["day"]) for t in touched}
    facility_keys = {(t["facility"], t["day"]) for t in touched}
    await _reset_visit_figures(conn, day_keys, facility_keys)
    await recompute_visit_figures(conn, day_keys, facility_keys, max_visit)
    await _drop_empty_rows(conn, r.changes, day_keys, facility_keys)


async def _reset_visit_figures(
    conn: Conn, day_keys: set[tuple[str, date]], facility_keys: set[tuple[str, date]]
) -> None:
    """Zero the visit figures of these keys (the recompute then sets those that still have
    visits: it only writes keys with at least one visit)."""
    if day_keys:
        keys = sorted(day_keys)
        await conn.execute(sql.DAILY_RESET, [k[0] for k in keys], [k[1] for k in keys])
    if facility_keys:
        fkeys = sorted(facility_keys)
        await conn.execute(sql.FACILITY_RESET, [k[0] for k in fkeys], [k[1] for k in fkeys])


async def _drop_empty_rows(
    conn: Conn,
    ch: Changes,
    day_keys: set[tuple[str, date]],
    facility_keys: set[tuple[str, date]],
) -> None:
    """Delete rows a retraction left at zero (a log without the voided events has none)."""
    dkeys = sorted(set(ch.daily) | {k[:2] for k in ch.breakdown} | day_keys)
    if dkeys:
        await conn.execute(
            """DELETE FROM district_daily_breakdown b
               USING unnest($1::text[], $2::date[]) AS k(d, dy)
               WHERE b.district = k.d AND b.day = k.dy AND b.n <= 0""",
            [k[0] for k in dkeys],
            [k[1] for k in dkeys],
        )
        await conn.execute(sql.DAILY_DELETE_EMPTY, [k[0] for k in dkeys], [k[1] for k in dkeys])
    fkeys = sorted(set(ch.facility_daily) | facility_keys)
    if fkeys:
        await conn.execute(sql.FACILITY_DELETE_EMPTY, [k[0] for k in fkeys], [k[1] for k in fkeys])


# --- read models ------------------------------------------------------------------------------

#: The additive columns with their zero, in the order of the upserts' arrays
#: (:data:`.read_model_sql.DAILY_UPSERT`, :data:`.read_model_sql.FACILITY_UPSERT`).
_DAILY_ADDED: tuple[tuple[str, int | Decimal], ...] = tuple(
    (c.name, 0 if c.unit is Unit.COUNT else Decimal(0))
    for c in DISTRICT_DAILY
    if c.kind is Kind.ADDITIVE
)
_FACILITY_ADDED: tuple[str, ...] = tuple(c.name for c in FACILITY_DAILY if c.kind is Kind.ADDITIVE)


@dataclass(frozen=True)
class ChangeArguments:
    """The arguments of the statements :func:`apply_changes` sends for one ``Changes`` (the
    additive writes, the visit upsert's), built by :func:`change_arguments`. Pure values: the
    projector builds them before the batch's transaction opens, so PostgreSQL does not wait
    for that Python (~15,000 visit records encoded per 40,000-event batch)."""

    changes: Changes
    additive: list[Write]
    visits: VisitArguments | None
    #: ``additive`` with the stock movements inserted without ``ON CONFLICT`` (the optimistic
    #: attempt of :func:`_additive`), when there are at least :data:`OPTIMISTIC_MIN_ROWS`.
    additive_all_new: list[Write] | None = None


def change_arguments(
    ch: Changes, rows_without_start: AbstractSet[tuple[str, str]] | None = None
) -> ChangeArguments:
    """The statements' arguments for ``ch``; ``rows_without_start``: see
    :func:`visit_arguments`. Pure."""
    return finish(change_argument_steps(ch, rows_without_start, AT_ONCE))


def change_argument_steps(
    ch: Changes, rows_without_start: AbstractSet[tuple[str, str]] | None, step: int
) -> Steps[ChangeArguments]:
    """:func:`change_arguments` in steps (the visit records encoded ``step`` at a time). Pure."""
    visits = None
    if ch.visit_starts or ch.visit_ends:
        visits = yield from visit_argument_steps(ch, rows_without_start, step)
    sums, stock = _sums(ch), _stock(ch)
    all_new = None
    if len(ch.stock_movements) >= OPTIMISTIC_MIN_ROWS:
        plain = sql.STOCK_MOVEMENTS_INSERT_ALL_NEW
        movements = sql.STOCK_MOVEMENTS_INSERT
        all_new = [*sums, *((plain if text == movements else text, a) for text, a in stock)]
    return ChangeArguments(ch, [*sums, *stock], visits, all_new)


async def apply_changes(
    conn: Conn,
    ch: Changes,
    max_visit: timedelta = DEFAULT_MAX_VISIT,
    prepared: ChangeArguments | None = None,
    *,
    defer: bool = False,
    flush: Sequence[str] = (),
) -> None:
    """Write ``ch`` (see :func:`services.projection.domain.project`); ``prepared``: its
    :func:`change_arguments` built beforehand (used only if built for this very ``ch``).

    The visit figures of the keys ``ch`` touches are recomputed at once, with those pending for
    the districts ``flush`` (locked by the caller) taken along; ``defer``: they are not
    recomputed but left pending (:func:`defer_visit_figures`; a catch-up's large batches)."""
    args = prepared if prepared is not None and prepared.changes is ch else change_arguments(ch)
    await _additive(conn, args)
    touched = await _visits(conn, args.visits)
    if defer:
        await defer_visit_figures(conn, touched)
    else:
        if flush:
            touched |= await take_pending_figures(conn, flush)
        await recompute_visit_figures(conn, *figure_keys(touched), max_visit)
    await _alerts(conn, ch)
    await _alert_lifecycle(conn, ch)


#: One write of a batch: a statement and its arguments (``$1``...), see :func:`run_together`.
Write = tuple[str, tuple[Any, ...]]


async def _additive(conn: Conn, args: ChangeArguments) -> None:
    """Run the additive writes of a batch (one statement, :func:`run_together`).

    Optimistic like the claim (:func:`claim_events`): a batch of many stock movements first
    inserts them without ``ON CONFLICT`` in a savepoint (``args.additive_all_new``). Every
    movement of a newly claimed event is new, so that holds; should one meet a stored movement,
    the savepoint is rolled back (with the other additive writes of the statement) and the
    writes run again with ``ON CONFLICT DO NOTHING`` (``dcr_projection_stock_fallbacks_total``).
    ``ON CONFLICT`` cost ~2.5-5 of ~10-13 us per movement (20,000-event batches into 200,000
    stored movements; bench/NOTES.md)."""
    if args.additive_all_new is not None:
        writes = args.additive_all_new

        async def plain() -> bool:
            await run_together(conn, writes)
            return True

        if await _attempt(conn, STOCK_FALLBACKS, plain):
            return
    await run_together(conn, args.additive)


async def run_together(conn: Conn, writes: Sequence[Write]) -> None:
    """Run ``writes`` as ONE statement (one round trip): each becomes a data-modifying CTE, its
    placeholders renumbered after the ones before it.

    Precondition (the callers' lists keep it): each write changes a table no other write of the
    list reads or changes. All of them then see the same snapshot and their effects are those
    of running them one after the other, in any order. Fewer round trips matter because each
    one waits for the event loop, which decodes the next batch meanwhile (consumer.Projector.run).
    """
    if len(writes) == 1:
        await conn.execute(writes[0][0], *writes[0][1])
        return
    if not writes:
        return
    ctes: list[str] = []
    args: list[Any] = []
    for i, (text, params) in enumerate(writes):
        ctes.append(f"w{i} AS ({_renumbered(text, len(args))})")
        args.extend(params)
    await conn.execute(f"WITH {', '.join(ctes)} SELECT 1", *args)


#: A positional parameter of a statement (none of the statements has ``$`` in a literal).
_PLACEHOLDER = re.compile(r"\$(\d+)")


def _renumbered(text: str, offset: int) -> str:
    """``text`` with ``$n`` turned into ``$(n + offset)``."""
    return _PLACEHOLDER.sub(lambda m: f"${int(m[1]) + offset}", text)


def _sums(ch: Changes) -> list[Write]:
    """The additive writes of ``ch``: district and facility day sums, breakdown counts and the
    facilities' last event times (each to its own table)."""
    writes: list[Write] = []
    if ch.daily:
        keys = sorted(ch.daily)
        columns = [[ch.daily[k].get(c, zero) for k in keys] for c, zero in _DAILY_ADDED]
        writes.append((sql.DAILY_UPSERT, ([k[0] for k in keys], [k[1] for k in keys], *columns)))
    if ch.breakdown:
        writes.append((sql.BREAKDOWN_ADD, (rows_json(list(ch.breakdown.items())),)))
    if ch.facility_daily:
        fkeys = sorted(ch.facility_daily)
        fcolumns = [[ch.facility_daily[k][c] for k in fkeys] for c in _FACILITY_ADDED]
        writes.append(
            (sql.FACILITY_UPSERT, ([k[0] for k in fkeys], [k[1] for k in fkeys], *fcolumns))
        )
    if ch.facility_last_event:
        skeys = sorted(ch.facility_last_event)
        writes.append(
            (
                """INSERT INTO facility_state (facility, last_event_time)
                   SELECT * FROM unnest($1::text[], $2::timestamptz[])
                   ON CONFLICT (facility) DO UPDATE
                   SET last_event_time = greatest(facility_state.last_event_time,
                                                  EXCLUDED.last_event_time)""",
                (skeys, [ch.facility_last_event[k] for k in skeys]),
            )
        )
    return writes


#: A (district, day, facility) whose visit figures changed (:func:`figure_keys`).
FigureKey = tuple[str, date, str]


def figure_keys(
    touched: AbstractSet[FigureKey],
) -> tuple[set[tuple[str, date]], set[tuple[str, date]]]:
    """The (district, day) and (facility, day) keys of ``touched``. Pure."""
    return {(k[0], k[1]) for k in touched}, {(k[2], k[1]) for k in touched}


#: Leave keys' visit figures pending: $1 districts, $2 days, $3 facilities.
DEFER_FIGURES = """INSERT INTO visit_figures_pending (district, day, facility)
    SELECT * FROM unnest($1::text[], $2::date[], $3::text[]) ON CONFLICT DO NOTHING"""


async def defer_visit_figures(conn: Conn, touched: AbstractSet[FigureKey]) -> None:
    """Record ``touched`` in ``visit_figures_pending`` (migration 150) instead of recomputing
    their figures: the batch's transaction commits them with its visits, so a crash cannot lose
    them; whoever takes them (:func:`take_pending_figures`) recomputes them in its transaction.
    Call it under the keys' district locks."""
    if touched:
        keys = sorted(touched)
        await conn.execute(
            DEFER_FIGURES, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]
        )


async def pending_districts(conn: Conn) -> list[str]:
    """The districts some of whose visit figures are pending (read without a lock: lock them,
    then :func:`take_pending_figures`)."""
    return [r[0] for r in await conn.fetch("SELECT DISTINCT district FROM visit_figures_pending")]


async def take_pending_figures(conn: Conn, districts: Sequence[str]) -> set[FigureKey]:
    """Delete and return the pending keys of ``districts`` (whose locks the caller holds): the
    caller recomputes them in the same transaction."""
    rows = await conn.fetch(
        """DELETE FROM visit_figures_pending WHERE district = ANY($1::text[])
           RETURNING district, day, facility""",
        list(districts),
    )
    return {(r["district"], r["day"], r["facility"]) for r in rows}


async def flush_pending_figures(conn: Conn, max_visit: timedelta = DEFAULT_MAX_VISIT) -> int:
    """Recompute every pending key's visit figures (locking their districts first, as a batch
    does) and delete them; returns how many keys. Call it in a transaction that holds no
    district lock yet."""
    districts = await pending_districts(conn)
    if not districts:
        return 0
    await lock_districts(conn, districts)
    keys = await take_pending_figures(conn, districts)
    await recompute_visit_figures(conn, *figure_keys(keys), max_visit)
    return len(keys)


async def _visits(conn: Conn, args: VisitArguments | None) -> set[FigureKey]:
    """Upsert the visit starts (first wins) and ends (earliest wins) of a batch
    (:func:`visit_arguments`; None: the batch has none); return the (district, day, facility)
    keys whose visit figures changed.

    A visit whose start and end are both in this batch is written once (the start's row carries
    the end, sent beside the starts in their order), not inserted and then updated; the effect
    is the same as applying the start and then the end.

    Optimistic like the claim (:func:`claim_events`): the starts no earlier batch is known to
    have left a row for (``args.may_exist`` counts the others) are inserted without ``ON
    CONFLICT`` in a savepoint, when there are at least :data:`OPTIMISTIC_MIN_ROWS` of them; if
    one does meet a stored row (its end was reported first, by a batch this process did not
    prepare: after a restart, or another instance's), the savepoint is rolled back and every
    start upserted (counted by ``dcr_projection_visit_fallbacks_total``). The result is the
    same either way. Without knowing which rows exist, a catch-up's plain insert failed in 15
    of 24 batches (an end reported first in one batch, its start in the next; bench/NOTES.md,
    "an optimistic claim")."""
    if args is None:  # no visit start or end
        return set()
    statement_args = (args.starts, args.paired_ends, args.alone)
    every_start = len(args.paired_ends)
    rows = None
    if every_start - args.may_exist >= OPTIMISTIC_MIN_ROWS:
        rows = await _attempt(
            conn,
            VISIT_FALLBACKS,
            lambda: conn.fetch(sql.UPSERT_VISITS, *statement_args, args.may_exist),
        )
    if rows is None:
        rows = await conn.fetch(sql.UPSERT_VISITS, *statement_args, every_start)
    return {(r["district"], r["day"], r["facility"]) for r in rows}


@dataclass(frozen=True, slots=True)
class VisitArguments:
    """The arguments of :data:`.read_model_sql.UPSERT_VISITS` for one ``Changes``
    (:func:`visit_arguments`). Pure values."""

    #: $1: the starts' records (JSON arrays), those that may meet a stored row first.
    starts: str
    #: $2: each start's end in the same batch (or None), in the order of ``starts``.
    paired_ends: list[datetime | None]
    #: $3: the records (JSON arrays) of the ends whose start is not in the batch.
    alone: str
    #: How many of the first ``starts`` may meet a stored row ($4 of the optimistic attempt).
    may_exist: int


def visit_arguments(
    ch: Changes, rows_without_start: AbstractSet[tuple[str, str]] | None = None
) -> VisitArguments:
    """The arguments of :data:`.read_model_sql.UPSERT_VISITS` for ``ch``: the starts' records,
    each start's end in this batch (or None) in the same order, the other ends' records.
    ``rows_without_start``: the (facility, visit_id) of the rows earlier batches made from an
    end alone (the starts that will meet them come first and are upserted); None: any start may
    meet a stored row (no optimistic attempt). Pure."""
    return finish(visit_argument_steps(ch, rows_without_start, AT_ONCE))


def visit_argument_steps(
    ch: Changes, rows_without_start: AbstractSet[tuple[str, str]] | None, step: int
) -> Steps[VisitArguments]:
    """:func:`visit_arguments` in steps (the records encoded ``step`` at a time). Pure."""
    starts, ends = ch.visit_starts, ch.visit_ends
    alone = [e for k, e in ends.items() if k not in starts]
    if rows_without_start is None:
        ordered, may_exist = list(starts.values()), len(starts)
    else:
        held = [s for k, s in starts.items() if k in rows_without_start]
        ordered = [*held, *(s for k, s in starts.items() if k not in rows_without_start)]
        may_exist = len(held)
    paired = [
        e.end_time if (e := ends.get((s.facility, s.visit_id))) is not None else None
        for s in ordered
    ]
    yield
    starts_json = yield from json_steps(ordered, step, sql.VISIT_START_RECORD)
    alone_json = yield from json_steps(alone, step, sql.VISIT_END_RECORD)
    return VisitArguments(starts_json, paired, alone_json, may_exist)


async def recompute_visit_figures(
    conn: Conn,
    day_keys: set[tuple[str, date]],
    facility_keys: set[tuple[str, date]],
    max_visit: timedelta = DEFAULT_MAX_VISIT,
) -> None:
    """Recompute the visit-derived figures of these (district, day) / (facility, day) keys from
    the ``visits`` facts (exact unique clients, median and mean of completed visits).

    Plausibility: a visit counts as completed (and enters the duration figures) only when its
    end is at or after its start and at most ``max_visit`` later; one ending before its start
    or lasting longer is still a visit, closed by rule, without a duration.

    Cost: the district figures and the route/substance breakdown read the visits of the
    touched district-days once for a few keys, twice for many
    (:func:`.read_model_sql.daily_recompute`); the facility counts read the visits of the
    touched days and facilities once, not once per key.

    Plans: a recompute of :data:`.read_model_sql.LARGE_RECOMPUTE` keys or more is planned for
    its arguments (``plan_cache_mode``, until the transaction ends). After five executions of
    a prepared statement PostgreSQL may keep a generic plan, chosen for the few keys of a live
    batch; on a catch-up's flush of the 1M-event log's 260 district-days and 1,300 room-days it
    took 2.7 s against 1.5 s (bench/NOTES.md, "visit figures recomputed faster")."""
    if max(len(day_keys), len(facility_keys)) >= sql.LARGE_RECOMPUTE:
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    if day_keys:
        keys = sorted(day_keys)
        districts, days = [k[0] for k in keys], [k[1] for k in keys]
        await conn.execute(BREAKDOWN_CLEAR, districts, days)
        await conn.execute(
            sql.DAILY_RECOMPUTE_LARGE if len(keys) >= sql.LARGE_RECOMPUTE else sql.DAILY_RECOMPUTE,
            districts,
            days,
            max_visit,
        )
        await _recompute_city_days(conn, set(days), max_visit)
    if facility_keys:
        fkeys = sorted(facility_keys)
        facilities, fdays = [k[0] for k in fkeys], [k[1] for k in fkeys]
        await conn.execute(
            sql.FACILITY_RECOMPUTE,
            facilities,
            fdays,
            sorted(set(fdays)),
            sorted(set(facilities)),
            max_visit,
        )


#: Delete the route and substance breakdown rows of $1 districts x $2 days (pairwise): the
#: district recompute (:data:`.read_model_sql.DAILY_RECOMPUTE`) inserts them afresh.
BREAKDOWN_CLEAR = """DELETE FROM district_daily_breakdown b
    USING unnest($1::text[], $2::date[]) AS k(district, day)
    WHERE b.district = k.district AND b.day = k.day
      AND b.dimension IN ('route', 'substance')"""


async def _recompute_city_days(conn: Conn, days: set[date], max_visit: timedelta) -> None:
    """City-wide distinct clients and median minutes of these days, from ``visits``.

    Serialised by a city-wide advisory lock (taken after the district locks, so the lock order
    stays the same everywhere): two instances writing different districts of one day would
    otherwise each count the other's uncommitted visits out."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, 0)", CITY_LOCK_NS)
    await conn.execute(sql.CITY_RECOMPUTE, sorted(days), max_visit)


def _stock(ch: Changes) -> list[Write]:
    """The stock writes of ``ch``: movements, latest counts, count reports (three tables)."""
    writes: list[Write] = []
    if ch.stock_movements:
        movements = records_json(ch.stock_movements, sql.STOCK_MOVEMENT_RECORD)
        writes.append((sql.STOCK_MOVEMENTS_INSERT, (movements,)))
    if ch.stock_counts:
        counts = [ch.stock_counts[k] for k in sorted(ch.stock_counts)]
        writes.append(
            (
                """INSERT INTO stock_counts (facility, item, counted_at, quantity)
                   SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[])
                   ON CONFLICT (facility, item) DO UPDATE
                   SET counted_at = EXCLUDED.counted_at, quantity = EXCLUDED.quantity
                   WHERE EXCLUDED.counted_at > stock_counts.counted_at""",
                (
                    [c.facility for c in counts],
                    [c.item for c in counts],
                    [c.counted_at for c in counts],
                    [c.quantity for c in counts],
                ),
            )
        )
    if ch.stock_count_reports:
        reports = records_json(ch.stock_count_reports, sql.STOCK_COUNT_REPORT_RECORD)
        writes.append((sql.STOCK_COUNT_REPORTS_INSERT, (reports,)))
    return writes


async def _retract_stock_counts(conn: Conn, keys: Sequence[tuple[str, str]]) -> None:
    """Remove the voided counts' reports; each (facility, item) they counted gets the latest
    remaining report as its count (none left: no count), as if they had never been reported.
    Counts applied before ``stock_count_reports`` existed have no reports and stay as they are.
    At equal times the lowest (source, id) wins here, where the live upsert kept the first in
    log order (two counts of one item at the same instant: the only case that may differ)."""
    gone = await conn.fetch(
        """DELETE FROM stock_count_reports r USING unnest($1::text[], $2::uuid[]) AS k(s, i)
           WHERE r.source = k.s AND r.id = k.i
           RETURNING r.facility, r.item""",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    pairs = sorted({(g["facility"], g["item"]) for g in gone})
    if not pairs:
        return
    facilities, items = [p[0] for p in pairs], [p[1] for p in pairs]
    await conn.execute(
        """DELETE FROM stock_counts c USING unnest($1::text[], $2::text[]) AS k(facility, item)
           WHERE c.facility = k.facility AND c.item = k.item""",
        facilities,
        items,
    )
    await conn.execute(
        """INSERT INTO stock_counts (facility, item, counted_at, quantity)
           SELECT DISTINCT ON (r.facility, r.item) r.facility, r.item, r.counted_at, r.quantity
           FROM stock_count_reports r
           JOIN unnest($1::text[], $2::text[]) AS k(facility, item)
             ON r.facility = k.facility AND r.item = k.item
           ORDER BY r.facility, r.item, r.counted_at DESC, r.source, r.id""",
        facilities,
        items,
    )


async def _alerts(conn: Conn, ch: Changes) -> None:
    if ch.alerts:
        await conn.execute(sql.ALERTS_INSERT, records_json(ch.alerts, sql.ALERT_RECORD))


async def _alert_lifecycle(conn: Conn, ch: Changes) -> None:
    """Acknowledgements, resolutions and withdrawals (the first of each per alert wins); the
    state is ``withdrawn`` once withdrawn, else ``resolved`` once resolved, else
    ``acknowledged`` once acknowledged, else ``open`` (whatever the order they arrive in)."""
    if ch.alert_acks:
        acks = ch.alert_acks
        await conn.execute(
            """UPDATE alerts a SET acknowledged_at = x.at, acknowledged_by = x.by,
                      seconds_to_acknowledge = x.seconds,
                      state = CASE WHEN a.resolved_at IS NULL AND a.withdrawn_at IS NULL
                                   THEN 'acknowledged' ELSE a.state END
                 FROM (SELECT DISTINCT ON (alert_id) * FROM unnest($1::text[],
                           $2::timestamptz[], $3::text[], $4::float8[])
                           AS u(alert_id, at, by, seconds) ORDER BY alert_id, at) x
                WHERE a.alert_id = x.alert_id AND a.acknowledged_at IS NULL""",
            [x.alert_id for x in acks],
            [x.at for x in acks],
            [x.by for x in acks],
            [x.seconds for x in acks],
        )
    if ch.alert_resolutions:
        ids, ats = zip(*ch.alert_resolutions.items(), strict=True)
        await conn.execute(
            """UPDATE alerts a SET resolved_at = x.at,
                      state = CASE WHEN a.withdrawn_at IS NULL THEN 'resolved' ELSE a.state END
                 FROM unnest($1::text[], $2::timestamptz[]) AS x(alert_id, at)
                WHERE a.alert_id = x.alert_id AND a.resolved_at IS NULL""",
            list(ids),
            list(ats),
        )
    if ch.alert_withdrawals:
        ids, ats = zip(*ch.alert_withdrawals.items(), strict=True)
        await conn.execute(
            """UPDATE alerts a SET withdrawn_at = x.at, state = 'withdrawn'
                 FROM unnest($1::text[], $2::timestamptz[]) AS x(alert_id, at)
                WHERE a.alert_id = x.alert_id AND a.withdrawn_at IS NULL""",
            list(ids),
            list(ats),
        )


def _split(tps: Iterable[TopicPartitionKey]) -> tuple[list[str], list[int]]:
    items = list(tps)
    return [t for t, _ in items], [p for _, p in items]
