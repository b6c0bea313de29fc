"""Isolation for one benchmark: its own topic prefix, database, city file and tokens.

Everything is created on entry and removed on exit (topics deleted, database dropped), so
benchmarks never see each other's (or the test suite's) events or rows, and a long-lived broker
does not fill up with benchmark topics.

The benchmark city (:func:`bench_city`) is city-scale: Copenhagen's 10 administrative districts
with ``facilities`` rooms spread evenly over them (50 by default), open around the clock. The real
``deploy/city.yaml`` has only 5 rooms, whose keys would fill at most 5 of the 6 partitions.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.auth import PrincipalKind, digest
from shared.city import City, District, Facility, FacilityStatus
from shared.db.migrate import apply_migrations
from shared.kafka.admin import ensure_topics, wait_until_ready
from shared.kafka.security import Target, target_kwargs
from shared.settings import REPO_ROOT, DatabaseSettings, KafkaSettings

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
    #: The broker(s) as the benchmark's own Kafka settings (``DCR_KAFKA_*``: a secured cluster
    #: as admin, whose identity the service processes then share).
    bootstrap: Target
    prefix: str
    base_dsn: str
    dsn: str
    city: City
    city_file: Path
    tokens_file: Path
    tokens: dict[str, str]
    secret: str
    work_dir: Path
    extra_databases: list[str] = field(default_factory=list)

    def topic(self, name: str) -> str:
        return self.prefix + name

    def service_env(self, dsn: str | None = None, **extra: str) -> dict[str, str]:
        """Environment of a service process pointed at this benchmark's resources."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DCR_")}
        env.update(
            {
                "DCR_ENV": "test",
                **kafka_env(self.bootstrap),
                "DCR_KAFKA_TOPIC_PREFIX": self.prefix,
                "DCR_DB_DSN": dsn or self.dsn,
                "DCR_CITY_FILE": str(self.city_file),
                "DCR_AUTH_TOKENS_FILE": str(self.tokens_file),
                "DCR_PSEUDONYM_SECRET": self.secret,
                **extra,
            }
        )
        return env

    async def new_database(self, label: str) -> str:
        """Another migrated database (dropped with the environment); its DSN."""
        db = f"dcr_bench_{self.name}_{label}_{uuid.uuid4().hex[:6]}"
        await _create_database(self.base_dsn, db)
        self.extra_databases.append(db)
        return _with_db(self.base_dsn, db)


def kafka_env(target: Target) -> dict[str, str]:
    """The ``DCR_KAFKA_*`` connection settings of ``target`` for a child process."""
    if isinstance(target, str):
        return {"DCR_KAFKA_BOOTSTRAP_SERVERS": target}
    out = {
        "DCR_KAFKA_BOOTSTRAP_SERVERS": target.bootstrap_servers,
        "DCR_KAFKA_SECURITY_PROTOCOL": target.security_protocol,
    }
    for name, value in (
        ("USERNAME", target.username),
        ("PASSWORD_FILE", target.password_file),
        ("CA_FILE", target.ca_file),
    ):
        if value is not None:
            out[f"DCR_KAFKA_{name}"] = str(value)
    return out


@asynccontextmanager
async def isolated(
    name: str, facilities: int = 50, keep_logs: bool = False
) -> AsyncIterator[BenchEnv]:
    """Create the topics, a migrated database, the city file and tokens; remove them on exit
    (the work directory with the service logs too, unless ``keep_logs``)."""
    kafka = KafkaSettings()
    base_dsn = DatabaseSettings().dsn.get_secret_value()
    run = uuid.uuid4().hex[:8]
    prefix = f"bench-{name}-{run}."
    db = f"dcr_bench_{name}_{run}"
    work_dir = WORK_ROOT / f"{name}-{run}"
    work_dir.mkdir(parents=True, exist_ok=True)
    city = bench_city(facilities)
    city_file = work_dir / "city.yaml"
    city_file.write_text(yaml.safe_dump(city.model_dump(mode="json"), sort_keys=False))
    tokens = {f.id: secrets.token_urlsafe(24) for f in city.facilities}
    tokens[SANITATION] = secrets.token_urlsafe(24)
    tokens_file = work_dir / "tokens.yaml"
    tokens_file.write_text(
        yaml.safe_dump(
            {
                "principals": [
                    {
                        "id": pid,
                        "kind": (
                            PrincipalKind.SANITATION
                            if pid == SANITATION
                            else PrincipalKind.FACILITY
                        ).value,
                        "token_sha256": digest(token),
                    }
                    for pid, token in tokens.items()
                ]
            }
        )
    )
    await wait_until_ready(kafka, timeout=60, brokers=kafka.replication_factor)
    env = BenchEnv(
        name=name,
        bootstrap=kafka,
        prefix=prefix,
        base_dsn=base_dsn,
        dsn=_with_db(base_dsn, db),
        city=city,
        city_file=city_file,
        tokens_file=tokens_file,
        tokens=tokens,
        secret=secrets.token_hex(32),
        work_dir=work_dir,
    )
    try:
        await _create_database(base_dsn, db)
        await ensure_topics(
            kafka, kafka.partitions, replication=kafka.replication_factor, prefix=prefix
        )
        await _wait_for_leaders(kafka, prefix)
        yield env
    finally:
        # Each step on its own: a failed clean-up is reported, never loses the results.
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            (
                f"database(s) {[db, *env.extra_databases]}",
                lambda: _drop_databases(base_dsn, [db, *env.extra_databases]),
            ),
            (f"topics {prefix}*", lambda: _delete_topics(kafka, prefix)),
        ]
        for what, step in steps:
            try:
                await step()
            except (OSError, asyncpg.PostgresError, KafkaError) as exc:
                print(f"bench: WARNING: could not remove {what}: {exc!r}", file=sys.stderr)
        if not keep_logs:
            shutil.rmtree(work_dir, ignore_errors=True)


def _with_db(dsn: str, db: str) -> str:
    """``dsn`` naming database ``db`` (any ``?options`` are kept)."""
    base, sep, query = dsn.partition("?")
    return base.rsplit("/", 1)[0] + "/" + db + sep + query


async def _create_database(base_dsn: str, db: str) -> None:
    admin = await asyncpg.connect(base_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{db}"')
    finally:
        await admin.close()
    await apply_migrations(_with_db(base_dsn, db))


async def _drop_databases(base_dsn: str, dbs: list[str], wait_s: float = 120) -> None:
    """Drop ``dbs``. A session of another role (autovacuum after a bulk load, a monitoring
    reader) cannot be terminated by us: then wait for it to end and try again."""
    admin = await asyncpg.connect(base_dsn)
    try:
        for db in dbs:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                    break
                except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(1)
    finally:
        await admin.close()


async def _wait_for_leaders(bootstrap: Target, prefix: str, timeout: float = 30) -> None:
    """Until every partition of the new topics has a leader (saves the pre-load's producer a
    round of NotLeaderForPartition retries)."""
    admin = AIOKafkaAdminClient(**target_kwargs(bootstrap))
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
            described = await admin.describe_topics(mine)
            if mine and all(
                t["error_code"] == 0
                and t["partitions"]
                and all(p["error_code"] == 0 and p["leader"] >= 0 for p in t["partitions"])
                for t in described
            ):
                return
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def _delete_topics(bootstrap: Target, prefix: str) -> None:
    admin = AIOKafkaAdminClient(**target_kwargs(bootstrap))
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
