"""The notifier's delivery log in PostgreSQL (table ``alert_deliveries``, migration 031).

Exactly once in effect, whatever the number of notifier instances, redeliveries and restarts:

* :meth:`enqueue` inserts one row per (alert event, recipient, channel), ``ON CONFLICT DO
  NOTHING``: a redelivered alert event adds nothing;
* :meth:`claim` takes due rows with ``FOR UPDATE SKIP LOCKED`` and a lease: two instances never
  send the same row at once; a sender that died holding a lease loses it at ``lease_until``;
* a row ends ``delivered`` or, after ``max_attempts`` failures, ``dead`` (visible in
  ``dcr_alert_deliveries_in_state{state="dead"}`` and the AlertDeliveryDead alert).

The one window left — a crash after the receiver accepted and before :meth:`delivered` — sends
the row again after the lease with the **same** delivery id (e-mail ``Message-ID``, webhook
``X-DCR-Delivery``), so receivers deduplicate it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


@dataclass(frozen=True, slots=True)
class Delivery:
    event_id: UUID
    recipient: str
    channel: str  # "email" | "webhook"
    delivery_id: UUID
    address: str
    message: dict[str, Any]
    event_time: datetime
    attempts: int  # including the current one
    created_at: datetime


class DeliveryStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def enqueue(self, rows: Sequence[Delivery]) -> int:
        """Insert the rows not yet in the log; return how many were new."""
        async with self._pool.acquire() as conn, conn.transaction():
            new = 0
            for d in rows:
                status = await conn.execute(
                    """INSERT INTO alert_deliveries (event_id, recipient, channel, delivery_id,
                           address, message, event_time)
                       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT DO NOTHING""",
                    d.event_id,
                    d.recipient,
                    d.channel,
                    d.delivery_id,
                    d.address,
                    json.dumps(d.message),
                    d.event_time,
                )
                new += status.endswith(" 1")
            return new

    async def claim(self, limit: int, lease_s: float) -> list[Delivery]:
        """Due pending rows, leased to this caller for ``lease_s`` (attempts counted now)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """UPDATE alert_deliveries d
                      SET attempts = d.attempts + 1,
                          lease_until = now() + make_interval(secs => $2)
                    WHERE (d.event_id, d.recipient, d.channel) IN (
                          SELECT event_id, recipient, channel FROM alert_deliveries
                           WHERE state = 'pending' AND next_attempt_at <= now()
                             AND (lease_until IS NULL OR lease_until <= now())
                           ORDER BY next_attempt_at
                           LIMIT $1
                           FOR UPDATE SKIP LOCKED)
                RETURNING d.*""",
                limit,
                lease_s,
            )
        return [
            Delivery(
                r["event_id"],
                r["recipient"],
                r["channel"],
                r["delivery_id"],
                r["address"],
                json.loads(r["message"]),
                r["event_time"],
                r["attempts"],
                r["created_at"],
            )
            for r in rows
        ]

    async def delivered(self, d: Delivery) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                """UPDATE alert_deliveries SET state = 'delivered', delivered_at = now(),
                          lease_until = NULL, last_error = NULL
                    WHERE event_id = $1 AND recipient = $2 AND channel = $3""",
                d.event_id,
                d.recipient,
                d.channel,
            )

    async def failed(self, d: Delivery, error: str, retry_in_s: float | None) -> None:
        """Record a failed attempt: retry after ``retry_in_s``, or dead when None."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                """UPDATE alert_deliveries
                      SET state = CASE WHEN $5::float8 IS NULL THEN 'dead' ELSE 'pending' END,
                          next_attempt_at = now() + make_interval(secs => coalesce($5, 0)),
                          lease_until = NULL, last_error = $4
                    WHERE event_id = $1 AND recipient = $2 AND channel = $3""",
                d.event_id,
                d.recipient,
                d.channel,
                error[:500],
                retry_in_s,
            )

    async def counts(self) -> dict[str, int]:
        """Rows per state (pending, delivered, dead)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT state, count(*) AS n FROM alert_deliveries GROUP BY 1")
        return {r["state"]: int(r["n"]) for r in rows}
