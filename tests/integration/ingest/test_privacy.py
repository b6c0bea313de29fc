"""A client's clear code never leaves the intake service: not in any Kafka record (key, value,
headers) of any topic, not in any column of any table, not in the logs, not in /metrics, not in
error answers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import asyncpg
import pytest

from services.intake.app import create_app as create_intake
from shared.kafka import topics
from tests.integration.ingest.conftest import at, bearer
from tests.support import read_topic, scrape_auth, serve

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration

CODE = "HT-SECRET-4711"


async def database_text(dsn: str) -> str:
    """Every row of every table of the test database, as text."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            """SELECT table_schema, table_name FROM information_schema.tables
               WHERE table_type = 'BASE TABLE'
                 AND table_schema NOT IN ('pg_catalog', 'information_schema')"""
        )
        assert any(t["table_name"] == "ingest_idempotency" for t in tables)
        parts = []
        for t in tables:
            rows = await conn.fetch(
                f'SELECT t::text AS row FROM "{t["table_schema"]}"."{t["table_name"]}" AS t'
            )
            parts.extend(r["row"] for r in rows)
        return "\n".join(parts)
    finally:
        await conn.close()


async def test_clear_client_code_appears_nowhere(
    test_env: TestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    visit = {
        "facility_id": "halmtorv",
        "occurred_at": at(2),
        "client_code": CODE,
        "substances": ["heroin"],
        "route": "inject",
    }
    async with serve(create_intake(config=test_env.ingest())) as client:
        started = await client.post(
            "/v1/visits", json=visit, headers=bearer(test_env, "halmtorv", "privacy-1")
        )
        assert started.status_code == 202
        refused = await client.post(
            "/v1/refusals",
            json={
                "facility_id": "halmtorv",
                "occurred_at": at(1),
                "reason": "intoxicated",
                "client_code": CODE,
            },
            headers=bearer(test_env, "halmtorv"),
        )
        assert refused.status_code == 202
        errors = [
            await client.post(
                "/v1/visits", json={**visit, "booth": 0}, headers=bearer(test_env, "halmtorv")
            ),  # 422
            await client.post(
                "/v1/visits",
                json={**visit, "route": "smoke"},
                headers=bearer(test_env, "halmtorv", "privacy-1"),
            ),  # 409
            await client.post("/v1/visits", json=visit, headers=bearer(test_env, "nordvest")),
        ]
        assert [e.status_code for e in errors] == [422, 409, 403]
        metrics = (await client.get("/metrics", headers=scrape_auth(test_env))).text

    for answer in (started, refused, *errors):
        assert CODE not in answer.text
    assert "dcr_http_requests_total" in metrics
    assert CODE not in metrics

    seen_visit = False
    for topic in topics.ALL_TOPICS:
        for record in await read_topic(test_env.bootstrap, test_env.topic(topic)):
            blob = b"".join(
                [
                    record.key or b"",
                    record.value or b"",
                    *(k.encode() + v for k, v in record.headers.items()),
                ]
            )
            assert CODE.encode() not in blob, f"clear code in a record of {topic}"
            seen_visit |= record.headers.get("ce_id") == started.json()["event_id"].encode()
    assert seen_visit  # the records searched include the visit just posted

    db = await database_text(test_env.dsn)
    assert started.json()["event_id"] in db  # the idempotency row of the visit is searched
    assert CODE not in db

    assert caplog.records  # logging was captured
    for rec in caplog.records:
        assert CODE not in rec.getMessage(), rec.name
        assert CODE not in str(rec.__dict__)
