"""Retention: person-level data is kept no longer than needed, aggregates for ever
(docs/retention.md). ``python -m services.projection.retention`` (``make retention``) runs it
once; the projection service runs it on its own every ``DCR_RETENTION_INTERVAL_S``.

The rule, per run (one transaction, ``retention_state`` locked):

* days older than ``DCR_RETENTION_PERSON_DAYS`` (default 90) local days are **sealed**
  (``sealed_before`` only moves forward): their aggregates stay, their ``visits`` rows
  (pseudonyms, substances, times), dedup records (``projection_events``) and voids are deleted;
* orphan visit ends (an end whose start never came) older than the ingest horizon plus the
  longest visit can never be matched by an accepted start: they are deleted (expired);
* idempotency records (``ingest_idempotency``, pseudonymous envelopes) are deleted one day
  after the seal horizon (they must outlive the dedup records they protect, see the docs);
* Kafka: the event topics keep records for the seal horizon plus two days, the dead-letter
  topic ``DCR_RETENTION_DEADLETTER_DAYS`` (topic configs, set by this job);
* log files (``DCR_RETENTION_LOG_DIR``, default ``.state/logs``) are rotated daily and deleted
  after ``DCR_RETENTION_LOG_DAYS`` (default 30; services.projection.log_retention).

Invariant (why a rebuild after retention equals the live tables): an event of a sealed day is
refused by the projection (dead-lettered, ``store.sealed_before``) live and in a rebuild, and a
rebuild (``store.reset``) keeps the sealed days' aggregate rows and replays only unsealed days.
Logs name counts only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from prometheus_client import Counter, Gauge
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.projection.domain import DEFAULT_MAX_VISIT
from services.projection.log_retention import enforce_log_retention
from services.projection.settings import ProjectionSettings
from services.projection.store import flush_pending_figures
from shared.bootstrap import Platform
from shared.kafka.admin import TOPIC_CONFIG
from shared.kafka.security import client_kwargs
from shared.kafka.topics import DEADLETTER, EVENT_TOPICS
from shared.settings import (
    REPO_ROOT,
    IngestSettings,
    KafkaSettings,
)

log = logging.getLogger(__name__)

#: Orphan ends older than the ingest horizon plus this can never be matched (longest visit).
_LONGEST_VISIT = timedelta(days=1)

ORPHAN_ENDS = Gauge(
    "dcr_projection_orphan_visit_ends",
    "Visit ends held apart because their start has not arrived (reconciled when it does, "
    "expired by the retention job)",
)
EXPIRED_ORPHAN_ENDS = Counter(
    "dcr_projection_orphan_visit_ends_expired",
    "Orphan visit ends deleted by retention (their start can no longer be accepted)",
)
RETENTION_DELETED = Counter(
    "dcr_retention_deleted_rows",
    "Rows deleted (or, for unsealed ends, emptied) by the retention job; kind = the table/step",
    ["kind"],
)


class RetentionSettings(BaseSettings):
    """``DCR_RETENTION_*``."""

    model_config = SettingsConfigDict(env_prefix="DCR_RETENTION_")

    #: Person-level data (visits, dedup records, idempotency envelopes, event topics) is kept
    #: this many local days; older days are sealed (aggregates only).
    person_days: int = Field(default=90, ge=35, le=3650)
    #: Dead-letter records (operations only) are kept this many days in Kafka.
    deadletter_days: int = Field(default=30, ge=1, le=3650)
    #: How often the projection service runs the job on its own (seconds).
    interval_s: float = Field(default=3600.0, gt=0)
    #: Log files are deleted this many days after their last line (rotated daily before).
    log_days: int = Field(default=30, ge=1, le=3650)
    #: Where the local scripts' processes write their logs (absent, e.g. in a container: skipped).
    log_dir: Path = REPO_ROOT / ".state" / "logs"


@dataclass(frozen=True)
class RetentionReport:
    sealed_before: date
    deleted: dict[str, int]


def seal_day(today: date, person_days: int) -> date:
    """The first local day that is NOT sealed."""
    return today - timedelta(days=person_days)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The instant local ``day`` begins (DST-correct)."""
    return datetime.combine(day, time(0), tzinfo=zone)


async def run_retention(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    zone: ZoneInfo,
    settings: RetentionSettings,
    ingest_horizon: timedelta,
    now: datetime,
    max_visit: timedelta = DEFAULT_MAX_VISIT,
) -> RetentionReport:
    """One retention run in one transaction (see the module docstring). Visit figures a
    catch-up left pending (``visit_figures_pending``) are recomputed first, while the visits
    of the days about to be sealed are still there (``max_visit``: the projection's rule)."""
    async with conn.transaction():
        old = await conn.fetchval(
            "SELECT sealed_before FROM retention_state WHERE singleton FOR UPDATE"
        )
        await flush_pending_figures(conn, max_visit)
        sealed = seal_day(now.astimezone(zone).date(), settings.person_days)
        if old is not None and old > sealed:
            sealed = old
        cut = day_start(sealed, zone)
        deleted = {
            # a sealed visit whose end is not sealed keeps its end as an orphan row: a rebuild
            # replays that end without the (sealed) start and holds it the same way
            "visits": await _count(
                conn,
                """DELETE FROM visits WHERE (day < $1 AND (end_time IS NULL OR end_time < $2))
                                         OR (start_time IS NULL AND end_time < $2)""",
                sealed,
                cut,
            ),
            "visits_unsealed_ends": await _count(
                conn,
                """UPDATE visits SET day = NULL, start_time = NULL, client_pseudonym = NULL,
                          pseudonym_key = NULL, route = NULL, substances = NULL,
                          assisted_injection = NULL, first_visit = NULL
                   WHERE day < $1""",
                sealed,
            ),
            "visits_orphan_ends": await _count(
                conn,
                "DELETE FROM visits WHERE start_time IS NULL AND end_time < $1",
                now - ingest_horizon - _LONGEST_VISIT,
            ),
            "projection_events": await _count(
                conn, "DELETE FROM projection_events WHERE time < $1", cut
            ),
            "projection_voids": await _count(
                conn, "DELETE FROM projection_voids WHERE time < $1", cut
            ),
            "ingest_idempotency": await _count(
                conn,
                "DELETE FROM ingest_idempotency WHERE created_at < $1",
                cut - timedelta(days=1),
            ),
        }
        await conn.execute(
            "UPDATE retention_state SET sealed_before = $1, last_run = $2 WHERE singleton",
            sealed,
            now,
        )
        held = await conn.fetchval("SELECT count(*) FROM visits WHERE start_time IS NULL")
    ORPHAN_ENDS.set(held)
    EXPIRED_ORPHAN_ENDS.inc(deleted["visits_orphan_ends"])
    for table, n in deleted.items():
        RETENTION_DELETED.labels(table).inc(n)
    return RetentionReport(sealed, deleted)


async def _count(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, sql: str, *args: object
) -> int:
    status = await conn.execute(sql, *args)
    return int(status.rsplit(" ", 1)[1])


def topic_retention_ms(settings: RetentionSettings) -> dict[str, int]:
    """retention.ms per catalogue topic: the seal horizon plus two days for event topics (an
    event's time is at most the clock skew after its append time, so every record of an
    unsealed day is still there), ``deadletter_days`` for the dead letters."""
    day_ms = 86_400_000
    out = {t: (settings.person_days + 2) * day_ms for t in EVENT_TOPICS}
    out[DEADLETTER] = settings.deadletter_days * day_ms
    return out


async def apply_topic_retention(kafka: KafkaSettings, settings: RetentionSettings) -> None:
    """Set retention.ms of the (prefixed) topics. AlterConfigs replaces a topic's whole config,
    so the other settings of :data:`shared.kafka.admin.TOPIC_CONFIG` are sent along."""
    admin = AIOKafkaAdminClient(**client_kwargs(kafka))
    await admin.start()
    try:
        responses = await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    kafka.topic(t),
                    configs={**TOPIC_CONFIG, "retention.ms": str(ms)},
                )
                for t, ms in topic_retention_ms(settings).items()
            ]
        )
        for response in responses:
            for error_code, _message, _kind, name in response.resources:
                if error_code != 0:
                    raise RuntimeError(f"could not set retention of topic {name}: {error_code}")
    finally:
        await admin.close()


async def retention_loop(
    pool: asyncpg.Pool,
    zone: ZoneInfo,
    stop: asyncio.Event,
    settings: RetentionSettings,
    horizon: timedelta,
    max_visit: timedelta = DEFAULT_MAX_VISIT,
) -> None:
    """Run retention every ``settings.interval_s`` until ``stop`` (the projection's job);
    ``horizon``: how late ingest still accepts an event (``DCR_INGEST_HORIZON_DAYS``);
    ``max_visit``: the projection's longest plausible visit (see :func:`run_retention`)."""
    while not stop.is_set():
        try:
            async with pool.acquire() as conn:
                report = await run_retention(
                    conn, zone, settings, horizon, datetime.now(UTC), max_visit
                )
            log.info(
                "retention: sealed before %s, deleted %s", report.sealed_before, report.deleted
            )
            logs = enforce_log_retention(settings.log_dir, datetime.now(UTC), settings.log_days)
            log.info("log retention: rotated %d, deleted %d", len(logs.rotated), len(logs.deleted))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("retention run failed (%s); will retry", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.interval_s)


async def _main(apply_topics: bool) -> int:
    settings = RetentionSettings()
    horizon = timedelta(days=IngestSettings().horizon_days)
    platform = Platform()
    city = platform.city
    conn = await platform.connect()
    try:
        report = await run_retention(
            conn,
            city.zone,
            settings,
            horizon,
            datetime.now(UTC),
            ProjectionSettings().max_visit,
        )
    finally:
        await conn.close()
    print(f"sealed before {report.sealed_before}; deleted rows: {report.deleted}")
    logs = enforce_log_retention(settings.log_dir, datetime.now(UTC), settings.log_days)
    print(f"log files in {settings.log_dir}: rotated {logs.rotated}, deleted {logs.deleted}")
    if apply_topics:
        await apply_topic_retention(platform.kafka, settings)
        print(f"topic retention.ms set: {topic_retention_ms(settings)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dcr-retention", description=__doc__)
    parser.add_argument(
        "--no-topics", action="store_true", help="do not set the Kafka topics' retention.ms"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(_main(apply_topics=not args.no_topics))


if __name__ == "__main__":
    sys.exit(main())
