"""Isolation for one benchmark: its own topic prefix, database, city file and tokens.

Built on the platform harness (:mod:`harness.isolation`, shared with the tests). Everything is
created on entry and removed on exit (topics deleted, database dropped), so
benchmarks never see each other's (or the test suite's) events or rows, and a long-lived broker
does not fill up with benchmark topics.

The benchmark city (:func:`bench_city`) is city-scale: Copenhagen's 10 administrative districts
with ``facilities`` rooms spread evenly over them (50 by default), open around the clock. The real
``deploy/city.yaml`` has only 5 rooms, whose keys would fill at most 5 of the 6 partitions.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import yaml

from harness.isolation import (
    Isolation,
    create_database,
    drop_database,
    issue_tokens,
    kafka_env,
    service_env,
    wait_for_leaders,
)
from harness.isolation import isolated as harness_isolated
from harness.process import ServiceProcess
from shared.auth import PrincipalKind
from shared.bootstrap import Platform
from shared.city import City, District, Facility, FacilityStatus
from shared.kafka.admin import wait_until_ready
from shared.kafka.security import Target
from shared.settings import REPO_ROOT, KafkaSettings

#: Copenhagen's 10 administrative districts (bydele).
DISTRICTS: tuple[str, ...] = (
    "indre-by",
    "oesterbro",
    "noerrebro",
    "vesterbro-kongens-enghave",
    "valby",
    "vanloese",
    "broenshoej-husum",
    "bispebjerg",
    "amager-oest",
    "amager-vest",
)
SANITATION = "sanitation-city"
#: The benchmark's metrics principal (reads a service's /metrics: bench/server_side.py).
SCRAPER = "bench-scraper"
WORK_ROOT = REPO_ROOT / ".state" / "bench"


def bench_city(facilities: int) -> City:
    """``facilities`` rooms (``room-01``...) over the 10 districts, round robin, 12 booths each."""
    always = {d: ("00:00", "24:00") for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    return City(
        timezone="Europe/Copenhagen",
        districts=tuple(District(id=d, name=d) for d in DISTRICTS),
        facilities=tuple(
            Facility(
                id=f"room-{i + 1:02d}",
                name=f"Room {i + 1}",
                district=DISTRICTS[i % len(DISTRICTS)],
                address="Benchmark",
                booths=12,
                status=FacilityStatus.PERMANENT,
                opening_hours=always,
            )
            for i in range(facilities)
        ),
    )


@dataclass
class BenchEnv:
    """One benchmark's isolated resources (see :func:`isolated`)."""

    name: str
    iso: Isolation
    #: The broker(s) as the benchmark's own Kafka settings (``DCR_KAFKA_*``: a secured cluster
    #: as admin, whose identity the service processes then share).
    kafka: KafkaSettings
    server_dsn: str
    city: City
    city_file: Path
    tokens_file: Path
    tokens: dict[str, str]
    secret: str
    work_dir: Path
    extra_databases: list[str] = field(default_factory=list)

    @property
    def bootstrap(self) -> Target:
        return self.kafka

    @property
    def prefix(self) -> str:
        return self.iso.topic_prefix

    @property
    def dsn(self) -> str:
        return self.iso.dsn

    def topic(self, name: str) -> str:
        return self.iso.topic(name)

    def service_env(self, dsn: str | None = None, **extra: str) -> dict[str, str]:
        """Environment of a service process pointed at this benchmark's resources."""
        return service_env(
            {
                **self.iso.variables(),
                **kafka_env(self.kafka),
                "DCR_DB_DSN": dsn or self.dsn,
                "DCR_CITY_FILE": str(self.city_file),
                "DCR_AUTH_TOKENS_FILE": str(self.tokens_file),
                "DCR_PSEUDONYM_SECRET": self.secret,
                **extra,
            }
        )

    def service(self, name: str, app: str, dsn: str | None = None, **extra: str) -> ServiceProcess:
        """A (not yet started) service process of this benchmark, logging to its work dir."""
        return ServiceProcess(self.work_dir, name, app, base=self.service_env(dsn, **extra))

    async def new_database(self, label: str) -> str:
        """Another migrated database (dropped with the environment); its DSN."""
        db = f"dcr_bench_{self.name}_{label}_{uuid.uuid4().hex[:6]}"
        self.extra_databases.append(db)
        return await create_database(self.server_dsn, db)


@asynccontextmanager
async def isolated(
    name: str, facilities: int = 50, keep_logs: bool = False, kafka: KafkaSettings | None = None
) -> AsyncIterator[BenchEnv]:
    """Create the topics, a migrated database, the city file and tokens; remove them on exit
    (the work directory with the service logs too, unless ``keep_logs``). The broker(s):
    ``kafka`` (e.g. a secured cluster as admin), default the process's ``DCR_KAFKA_*``."""
    platform = Platform()
    kafka, server_dsn = kafka or platform.kafka, platform.dsn
    await wait_until_ready(kafka, timeout=60, brokers=kafka.replication_factor)
    async with harness_isolated(
        kafka,
        server_dsn,
        label=f"bench-{name}",
        partitions=kafka.partitions,
        replication=kafka.replication_factor,
        on_cleanup_error=_warn,
    ) as iso:
        work_dir = WORK_ROOT / iso.topic_prefix.rstrip(".")
        work_dir.mkdir(parents=True, exist_ok=True)
        city = bench_city(facilities)
        city_file = work_dir / "city.yaml"
        city_file.write_text(yaml.safe_dump(city.model_dump(mode="json"), sort_keys=False))
        principals = [(f.id, PrincipalKind.FACILITY) for f in city.facilities]
        principals.append((SANITATION, PrincipalKind.SANITATION))
        principals.append((SCRAPER, PrincipalKind.METRICS))
        tokens_file = work_dir / "tokens.yaml"
        env = BenchEnv(
            name=name,
            iso=iso,
            kafka=kafka,
            server_dsn=server_dsn,
            city=city,
            city_file=city_file,
            tokens_file=tokens_file,
            tokens=issue_tokens(tokens_file, principals),
            secret=secrets.token_hex(32),
            work_dir=work_dir,
        )
        try:
            await wait_for_leaders(kafka, iso.topic_prefix)
            yield env
        finally:
            # Each on its own: a failed clean-up is reported, never loses the results.
            for db in env.extra_databases:
                try:
                    await drop_database(server_dsn, db)
                except (OSError, asyncpg.PostgresError, AssertionError) as exc:
                    _warn(f"database {db}", exc)
            if not keep_logs:
                shutil.rmtree(work_dir, ignore_errors=True)


def _warn(what: str, exc: Exception) -> None:
    print(f"bench: WARNING: could not remove {what}: {exc!r}", file=sys.stderr)
