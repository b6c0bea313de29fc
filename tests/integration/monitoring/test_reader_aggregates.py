"""Grafana's database role ``dcr_reader`` reads aggregates only (migrations 020 + 041): on a
migrated database holding real visit rows, every visit-level read is refused, and the hourly
check-in counts the facility dashboard shows are readable and right."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.integration.conftest import TestEnv
from tests.integration.monitoring.stack import reader_dsn
from tests.monitoring import dashboards as dash

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


#: A ``day`` filter of a committed panel: Grafana's range as local days.
DAY_FILTER = re.compile(
    r"day BETWEEN \(\$__timeFrom\(\)[^)]*\)::date AND \(\$__timeTo\(\)[^)]*\)::date"
)


@pytest.mark.parametrize(
    ("time_to", "last_day"),
    [
        (datetime(2026, 11, 29, 23, 30, tzinfo=UTC), "2026-11-30"),  # 00:30 local, winter
        (datetime(2027, 7, 1, 22, 30, tzinfo=UTC), "2027-07-02"),  # 00:30 local, summer
        (datetime(2027, 7, 1, 12, 0, tzinfo=UTC), "2027-07-01"),
    ],
)
async def test_day_panels_show_every_local_day_of_the_range(
    test_env: TestEnv, time_to: datetime, last_day: str
) -> None:
    """Every panel reading a ``day`` column filters with the local days of Grafana's range (the
    committed SQL, the macros expanded as Grafana's PostgreSQL data source does): between local
    and UTC midnight today's local day is shown (``$__timeFilter(day)`` compared with the UTC
    date and dropped it), and the range's first local day is its first."""
    time_from = time_to - timedelta(days=7)
    first = time_from.astimezone(ZoneInfo("Europe/Copenhagen")).date().isoformat()
    queries = [t.query for t in dash.targets() if t.kind == "sql" and "_daily" in t.query]
    assert queries and not [q for q in queries if "$__timeFilter(day)" in q]
    filters = {f for q in queries for f in DAY_FILTER.findall(q)}
    assert len(filters) == 1, filters  # one expression, from the generator's City
    conn = await asyncpg.connect(test_env.dsn)
    try:
        for where in filters:
            days = await conn.fetch(
                "SELECT day::date::text AS day FROM generate_series(date '2026-01-01', "
                "date '2028-01-01', interval '1 day') g(day) "
                f"WHERE {dash.sql(where, time_from, time_to)}"
            )
            shown = [r["day"] for r in days]
            assert (shown[0], shown[-1], len(shown)) == (first, last_day, 8)
    finally:
        await conn.close()
