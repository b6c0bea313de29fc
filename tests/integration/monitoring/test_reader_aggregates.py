"""Grafana's database role ``dcr_reader`` reads aggregates only (migrations 020 + 041): on a
migrated database holding real visit rows, every visit-level read is refused, and the hourly
check-in counts the facility dashboard shows are readable and right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.integration.conftest import TestEnv
from tests.integration.monitoring.stack import reader_dsn

pytestmark = pytest.mark.integration

MICRODATA = [
    "SELECT facility, start_time, end_time FROM visits",
    "SELECT substances FROM visits",
    "SELECT route FROM visits",
    "SELECT first_visit FROM visits",
    "SELECT assisted_injection, day, district FROM visits",
    "SELECT count(*) FROM visits",
    "SELECT * FROM visits",
    "SELECT * FROM public_releases",
    "SELECT * FROM ingest_idempotency",
]


async def test_dcr_reader_cannot_select_microdata_but_reads_hourly_counts(
    iso_env: TestEnv,
) -> None:
    at = datetime(2029, 5, 14, 10, 15, tzinfo=UTC)
    owner = await asyncpg.connect(iso_env.dsn)
    try:
        await owner.executemany(
            """INSERT INTO visits (facility, visit_id, district, day, start_time, end_time,
                                   route, substances, assisted_injection, first_visit)
               VALUES ('halmtorv', $1, 'vesterbro', $2, $3, $4, 'inject', '{heroin}', false,
                       true)""",
            [
                (f"v{i}", at.date(), at + timedelta(minutes=i), at + timedelta(minutes=30 + i))
                for i in range(3)
            ],
        )
    finally:
        await owner.close()
    conn = await asyncpg.connect(reader_dsn(iso_env.dsn))
    try:
        assert await conn.fetchval("SELECT current_user") == "dcr_reader"
        for query in MICRODATA:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(query)
        rows = await conn.fetch(
            "SELECT facility, hour, check_ins FROM facility_checkins_hourly ORDER BY hour"
        )
        assert [(r["facility"], r["hour"], r["check_ins"]) for r in rows] == [
            ("halmtorv", at.replace(minute=0), 3)
        ]
    finally:
        await conn.close()
