"""PostgreSQL side of :mod:`.rooms`: writes :class:`~.rooms.RoomChanges` in the batch's
transaction (set-based, sums only, so the result does not depend on batching). A row whose sum a
retraction brings back to zero is deleted: it is then as if the event had never come (a rebuild
equal to the live tables)."""

from __future__ import annotations

from services.projection import read_model_sql as sql
from services.projection.rooms import RoomChanges
from services.projection.store import Conn, Write, rows_json, run_together


async def apply_room_changes(conn: Conn, ch: RoomChanges) -> None:
    """Add ``ch``'s sums (both tables in one statement: :func:`.store.run_together`), then
    delete the rows a retraction brought back to zero."""
    writes: list[Write] = []
    if ch.room:
        writes.append((sql.ROOM_ADD, (rows_json(list(ch.room.items())),)))
    if ch.street:
        skeys = sorted(ch.street)
        writes.append(
            (
                """INSERT INTO street_collections_daily (district, area, day, reports, needles, kg)
                   SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::int[],
                                        $5::bigint[], $6::numeric[])
                   ON CONFLICT (district, area, day) DO UPDATE
                   SET reports = street_collections_daily.reports + EXCLUDED.reports,
                       needles = street_collections_daily.needles + EXCLUDED.needles,
                       kg = street_collections_daily.kg + EXCLUDED.kg""",
                (
                    [k[0] for k in skeys],
                    [k[1] for k in skeys],
                    [k[2] for k in skeys],
                    [ch.street[k].reports for k in skeys],
                    [ch.street[k].needles for k in skeys],
                    [ch.street[k].kg for k in skeys],
                ),
            )
        )
    await run_together(conn, writes)
    if ch.room and any(v < 0 for v in ch.room.values()):  # a retraction: a zero sum has no row
        keys = sorted(ch.room)
        await conn.execute(
            """DELETE FROM room_daily
               WHERE amount = 0 AND (facility, day, measure, key) IN (
                   SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[]))""",
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [k[3] for k in keys],
        )
    if ch.street and any(v.reports < 0 for v in ch.street.values()):  # back to nothing
        skeys = sorted(ch.street)
        await conn.execute(
            """DELETE FROM street_collections_daily
               WHERE reports = 0 AND (district, area, day) IN (
                   SELECT * FROM unnest($1::text[], $2::text[], $3::date[]))""",
            [k[0] for k in skeys],
            [k[1] for k in skeys],
            [k[2] for k in skeys],
        )
