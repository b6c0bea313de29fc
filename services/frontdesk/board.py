"""The booth board in PostgreSQL (table ``frontdesk_board``, migration 070).

Invariants: a booth holds at most one open check-in (unique partial index); every operation is
idempotent by the check-in's key, so a tablet resending its queue changes nothing twice. Client
codes are not stored here (see :class:`CodeMemory`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import asyncpg


class CheckIn(Enum):
    DONE = "done"  # new, or the same key again while the person is in the booth
    ENDED = "ended"  # the same key again after its check-out (a late resend)
    OCCUPIED = "occupied"  # another check-in holds the booth


@dataclass(frozen=True, slots=True)
class Occupant:
    booth: int
    checkin_key: str
    checked_in_at: datetime
    sent: bool  # the check-in reached the platform (has a visit id)


class Board:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def occupants(self, facility: str) -> list[Occupant]:
        rows = await self._pool.fetch(
            """SELECT booth, checkin_key, checked_in_at, visit_id IS NOT NULL AS sent
               FROM frontdesk_board WHERE facility = $1 AND checked_out_at IS NULL
               ORDER BY booth""",
            facility,
        )
        return [Occupant(r["booth"], r["checkin_key"], r["checked_in_at"], r["sent"]) for r in rows]

    async def check_in(self, facility: str, key: str, booth: int, at: datetime) -> CheckIn:
        async with self._pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO frontdesk_board (facility, checkin_key, booth, checked_in_at)
                   VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING""",
                facility,
                key,
                booth,
                at,
            )
            open_now = await conn.fetchval(
                """SELECT checked_out_at IS NULL FROM frontdesk_board
                   WHERE facility = $1 AND checkin_key = $2""",
                facility,
                key,
            )
        if open_now is None:
            return CheckIn.OCCUPIED
        return CheckIn.DONE if open_now else CheckIn.ENDED

    async def sent(self, facility: str, key: str, visit_id: str) -> None:
        await self._pool.execute(
            "UPDATE frontdesk_board SET visit_id = $3 WHERE facility = $1 AND checkin_key = $2",
            facility,
            key,
            visit_id,
        )

    async def undo(self, facility: str, key: str) -> None:
        """Forget a check-in the platform refused (it never happened)."""
        await self._pool.execute(
            """DELETE FROM frontdesk_board
               WHERE facility = $1 AND checkin_key = $2 AND visit_id IS NULL""",
            facility,
            key,
        )

    async def known(self, facility: str, key: str) -> tuple[bool, str | None]:
        """Whether the check-in ``key`` exists, and its visit id once sent."""
        row = await self._pool.fetchrow(
            "SELECT visit_id FROM frontdesk_board WHERE facility = $1 AND checkin_key = $2",
            facility,
            key,
        )
        return (row is not None, row["visit_id"] if row else None)

    async def check_out(self, facility: str, key: str, at: datetime) -> None:
        """Free the booth (the first check-out time is kept)."""
        await self._pool.execute(
            """UPDATE frontdesk_board SET checked_out_at = COALESCE(checked_out_at, $3)
               WHERE facility = $1 AND checkin_key = $2""",
            facility,
            key,
            at,
        )

    async def ping(self) -> bool:
        try:
            await self._pool.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError):
            return False
        return True


class CodeMemory:
    """Client codes of the people in the booths, in this process's memory only.

    Invariant: a code is held from its check-in to its check-out and never written to disk, a log
    or a URL; after a restart the board shows occupied booths without codes.
    """

    def __init__(self) -> None:
        self._codes: dict[tuple[str, str], str] = {}

    def keep(self, facility: str, key: str, code: str) -> None:
        self._codes[(facility, key)] = code

    def forget(self, facility: str, key: str) -> None:
        self._codes.pop((facility, key), None)

    def get(self, facility: str, key: str) -> str | None:
        return self._codes.get((facility, key))
