"""store.run_together: independent writes of a batch go to PostgreSQL as one statement, each
write's placeholders renumbered after the ones before it (its effects on the real database are
checked by tests/integration/projection: oracle, corrections, stock voids, transport)."""

from __future__ import annotations

from typing import Any

from services.projection import store


class _Conn:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def execute(self, text: str, *args: Any) -> str:
        self.calls.append((text, args))
        return "OK"


async def test_writes_become_one_statement_with_renumbered_placeholders() -> None:
    conn = _Conn()
    writes: list[store.Write] = [
        ("INSERT INTO a SELECT * FROM unnest($1::text[], $2::int[])", (["x"], [1])),
        ("INSERT INTO b SELECT $1::jsonb", ("[]",)),
        (
            "INSERT INTO c SELECT * FROM unnest($1::text[], $2::date[], $10::int[])",
            tuple(range(10)),
        ),
    ]

    await store.run_together(conn, writes)  # type: ignore[arg-type]

    assert conn.calls == [
        (
            "WITH w0 AS (INSERT INTO a SELECT * FROM unnest($1::text[], $2::int[])), "
            "w1 AS (INSERT INTO b SELECT $3::jsonb), "
            "w2 AS (INSERT INTO c SELECT * FROM unnest($4::text[], $5::date[], $13::int[])) "
            "SELECT 1",
            (["x"], [1], "[]", *range(10)),
        )
    ]


async def test_a_single_write_runs_as_it_is_and_none_sends_nothing() -> None:
    conn = _Conn()
    await store.run_together(conn, [("DELETE FROM a WHERE k = $1", ("k",))])  # type: ignore[arg-type]
    await store.run_together(conn, [])  # type: ignore[arg-type]
    assert conn.calls == [("DELETE FROM a WHERE k = $1", ("k",))]
