"""PostgreSQL persistence of the drug alert worker (tables of migration 010).

Why a table of recent overdoses rather than re-reading the incidents topic on start: the table
holds only what the rule needs (event source and id, district, time of overdoses), a start-up
rebuild is one indexed query instead of a scan of the topic's history, and writing an overdose
in the **same transaction** as the alerts it raised makes "counted" and "alerted" atomic, which lets
:meth:`AlertState.restore <services.incident.alerting.AlertState.restore>` treat every episode
in the table as alerted.

Lifecycle (migration 031): ``alert_episodes`` also records acknowledgement and resolution, and
``alert_outbox`` holds their events (``dk.dcr.alert.acknowledged`` / ``resolved``), written in
the same transaction as the state change and published afterwards, like the raised alerts.

Corrections (migration 115): ``alert_voids`` holds every void consumed; a void, the deletion of
the overdose it voids, the withdrawals (``alert_episodes.withdrawn_at`` and their
``dk.dcr.alert.withdrawn`` in the outbox) and any alert it raised are one transaction, so a
restart or a new leader neither applies a void twice nor loses one.

``alert_episodes`` is also an outbox: an alert is stored (unique episode key) before it is
published, and marked published after Kafka acknowledged it. A crash in between republishes the
same record (same CloudEvents id) on the next start: at least once, duplicates harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID, uuid5

import asyncpg

from services.incident.alerting import OpenAlert, RaisedAlert
from shared.events.envelope import Envelope, district_source, from_record_json, to_record_json
from shared.events.payloads import (
    DrugAlertAcknowledged,
    DrugAlertRaised,
    DrugAlertResolved,
    DrugAlertWithdrawn,
    ReportVoided,
)
from shared.events.vocabulary import AlertReason, Substance

#: Namespace of acknowledgement event ids (uuid5 of the alert id): once per alert.
ACK_NAMESPACE = UUID("2d4a7b8e-3f61-4c0f-8e0b-6a1f0e9d5c21")

#: Overdoses this much older than the rule's horizon are deleted on start.
_KEEP_EXTRA = timedelta(days=7)


class AlertStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(
        self, since: datetime
    ) -> tuple[list[tuple[str, str, UUID, datetime]], list[tuple[str, Substance, datetime]]]:
        """Overdoses and adulterant alerts with event time at or after ``since``; also deletes
        overdoses far older than that (they can no longer matter)."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM alert_overdoses WHERE occurred_at < $1", since - _KEEP_EXTRA
            )
            overdoses = await conn.fetch(
                "SELECT district, source, event_id, occurred_at FROM alert_overdoses "
                "WHERE occurred_at >= $1",
                since,
            )
            adulterants = await conn.fetch(
                "SELECT district, substance, occurred_at FROM alert_episodes "
                "WHERE reason = $1 AND occurred_at >= $2 AND substance IS NOT NULL",
                AlertReason.ADULTERANT_FOUND.value,
                since,
            )
        return (
            [(r["district"], r["source"], r["event_id"], r["occurred_at"]) for r in overdoses],
            [(r["district"], Substance(r["substance"]), r["occurred_at"]) for r in adulterants],
        )

    async def voids(self, since: datetime) -> list[tuple[str, UUID, datetime]]:
        """Voids ``(source, target id, void time)`` at or after ``since``; also deletes voids far
        older than that (like the overdoses)."""
        async with self._pool.acquire() as conn:
            await conn.execute("DELETE FROM alert_voids WHERE voided_at < $1", since - _KEEP_EXTRA)
            rows = await conn.fetch(
                "SELECT source, target_id, voided_at FROM alert_voids WHERE voided_at >= $1",
                since,
            )
        return [(r["source"], r["target_id"], r["voided_at"]) for r in rows]

    async def withdrawn_episodes(self, since: datetime) -> list[str]:
        """Episode keys of the alerts withdrawn about instants at or after ``since``."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT episode FROM alert_episodes "
                "WHERE withdrawn_at IS NOT NULL AND occurred_at >= $1",
                since,
            )
        return [r["episode"] for r in rows]

    async def raised_alerts(self, district: str, since: datetime) -> list[RaisedAlert]:
        """The district's overdose-cluster alerts about instants at or after ``since`` that
        were not withdrawn (what a void is checked against)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT alert_id, district, episode, occurred_at FROM alert_episodes "
                "WHERE reason = $1 AND district = $2 AND occurred_at >= $3 "
                "AND withdrawn_at IS NULL",
                AlertReason.OVERDOSE_CLUSTER.value,
                district,
                since,
            )
        return [
            RaisedAlert(r["alert_id"].hex, r["district"], r["episode"], r["occurred_at"])
            for r in rows
        ]

    async def record_void(
        self, void: Envelope, withdrawn: Sequence[Envelope], alerts: Sequence[Envelope]
    ) -> None:
        """In one transaction: the void, the deletion of the overdose it voids (if stored), each
        withdrawal (once per alert: its event goes to the outbox only if the alert was not
        withdrawn yet) and the alerts it raised. A repeated void changes nothing."""
        data = void.data
        assert isinstance(data, ReportVoided)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO alert_voids (source, target_id, void_id, voided_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                void.source,
                data.target_id,
                void.id,
                void.time,
            )
            await conn.execute(
                "DELETE FROM alert_overdoses WHERE source = $1 AND event_id = $2",
                void.source,
                data.target_id,
            )
            for env in withdrawn:
                w = env.data
                assert isinstance(w, DrugAlertWithdrawn)
                done = await conn.execute(
                    "UPDATE alert_episodes SET withdrawn_at = $2 "
                    "WHERE alert_id = $1 AND withdrawn_at IS NULL",
                    UUID(w.alert_id),
                    env.time,
                )
                if done.endswith(" 1"):
                    await self._outbox(conn, env)
            await self._insert_alerts(conn, alerts)

    async def record(
        self, overdose: tuple[str, str, UUID, datetime] | None, alerts: Sequence[Envelope]
    ) -> None:
        """In one transaction: the overdose ``(district, source, id, time)`` (if any) and the
        alerts (unpublished). Both are no-ops for rows already there (redelivered event, episode
        already raised)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if overdose is not None:
                await conn.execute(
                    "INSERT INTO alert_overdoses (district, source, event_id, occurred_at) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (source, event_id) DO NOTHING",
                    *overdose,
                )
            await self._insert_alerts(conn, alerts)

    @staticmethod
    async def _insert_alerts(
        conn: asyncpg.pool.PoolConnectionProxy, alerts: Sequence[Envelope]
    ) -> None:
        for env in alerts:
            data = env.data
            assert isinstance(data, DrugAlertRaised)
            await conn.execute(
                """INSERT INTO alert_episodes
                       (episode, alert_id, reason, district, substance, occurred_at, record)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
                data.episode,
                env.id,
                data.reason.value,
                data.district,
                data.substance.value if data.substance else None,
                env.time,
                to_record_json(env),
            )

    async def unpublished(self) -> list[Envelope]:
        """Alerts stored but not yet acknowledged by Kafka, oldest first."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT record FROM alert_episodes WHERE NOT published ORDER BY raised_at"
            )
        return [from_record_json(r["record"]) for r in rows]

    async def mark_published(self, alert_id: UUID) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE alert_episodes SET published = true WHERE alert_id = $1", alert_id
            )

    async def open_alerts(self) -> list[OpenAlert]:
        """Published alerts neither resolved nor withdrawn."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT alert_id, district, reason, episode, occurred_at FROM alert_episodes "
                "WHERE resolved_at IS NULL AND withdrawn_at IS NULL AND published"
            )
        return [
            OpenAlert(
                r["alert_id"].hex,
                r["district"],
                AlertReason(r["reason"]),
                r["episode"],
                r["occurred_at"],
            )
            for r in rows
        ]

    async def last_overdoses(self) -> dict[str, datetime]:
        """Event time of the latest overdose per district."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT district, max(occurred_at) AS last FROM alert_overdoses GROUP BY district"
            )
        return {r["district"]: r["last"] for r in rows}

    async def resolve(self, event: Envelope) -> bool:
        """Mark the alert resolved and store its event; False if it already was."""
        data = event.data
        assert isinstance(data, DrugAlertResolved)
        async with self._pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                "UPDATE alert_episodes SET resolved_at = $2 "
                "WHERE alert_id = $1 AND resolved_at IS NULL",
                UUID(data.alert_id),
                event.time,
            )
            if not done.endswith(" 1"):
                return False
            await self._outbox(conn, event)
            return True

    async def acknowledge(
        self, alert_id: UUID, by: str, at: datetime
    ) -> tuple[str, datetime | None, str | None]:
        """Acknowledge an alert once: ``("new" | "already" | "missing", acknowledged_at, by)``.
        A new acknowledgement stores its event in the outbox in the same transaction."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT district, raised_at, acknowledged_at, acknowledged_by FROM alert_episodes "
                "WHERE alert_id = $1 FOR UPDATE",
                alert_id,
            )
            if row is None:
                return "missing", None, None
            if row["acknowledged_at"] is not None:
                return "already", row["acknowledged_at"], row["acknowledged_by"]
            await conn.execute(
                "UPDATE alert_episodes SET acknowledged_at = $2, acknowledged_by = $3 "
                "WHERE alert_id = $1",
                alert_id,
                at,
                by,
            )
            data = DrugAlertAcknowledged(
                alert_id=alert_id.hex,
                district=row["district"],
                acknowledged_by=by,
                seconds_to_acknowledge=max(0.0, (at - row["raised_at"]).total_seconds()),
            )
            await self._outbox(
                conn,
                Envelope.wrap(
                    data,
                    id=uuid5(ACK_NAMESPACE, alert_id.hex),
                    source=district_source(row["district"]),
                    time=at,
                ),
            )
            return "new", at, by

    @staticmethod
    async def _outbox(conn: asyncpg.pool.PoolConnectionProxy, event: Envelope) -> None:
        await conn.execute(
            "INSERT INTO alert_outbox (event_id, record) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            event.id,
            to_record_json(event),
        )

    async def outbox_unpublished(self) -> list[Envelope]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT record FROM alert_outbox WHERE NOT published ORDER BY created_at"
            )
        return [from_record_json(r["record"]) for r in rows]

    async def mark_outbox_published(self, event_id: UUID) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE alert_outbox SET published = true WHERE event_id = $1", event_id
            )
