"""PostgreSQL persistence of the drug alert worker (tables of migration 010).

Why a table of recent overdoses rather than re-reading the incidents topic on start: the table
holds only what the rule needs (event source and id, district, time of overdoses), a start-up
rebuild is one indexed query instead of a scan of the topic's history, and writing an overdose
in the **same transaction** as the alerts it raised makes "counted" and "alerted" atomic, which lets
:meth:`AlertState.restore <services.incident.alerting.AlertState.restore>` treat every episode
in the table as alerted.

``alert_episodes`` is also an outbox: an alert is stored (unique episode key) before it is
published, and marked published after Kafka acknowledged it. A crash in between republishes the
same record (same CloudEvents id) on the next start: at least once, duplicates harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from shared.events.envelope import Envelope, from_record_json, to_record_json
from shared.events.payloads import DrugAlertRaised
from shared.events.vocabulary import AlertReason, Substance

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
