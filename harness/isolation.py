"""Isolated resources on the shared broker and PostgreSQL server: a topic prefix, a migrated
database, a tokens file, and the environment a service process is started with.

Invariants: a database DSN keeps the server DSN's options (``?sslmode=...``): tests, bench and
services connect the same way; everything :func:`isolated` creates is removed on exit, each
clean-up step on its own (a failed one never hides the others); tokens are random, only their
SHA-256 digests are written (``shared.auth.write_tokens_file``, as the platform's own).
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from harness.poll import poll_until
from shared.auth import PrincipalKind, write_tokens_file
from shared.db.migrate import apply_migrations
from shared.kafka.admin import ensure_topics
from shared.kafka.security import Target, target_kwargs, target_name


def database_dsn(dsn: str, db: str) -> str:
    """``dsn`` naming database ``db`` instead (any ``?options`` are kept)."""
    base, sep, query = dsn.partition("?")
    return base.rsplit("/", 1)[0] + "/" + db + sep + query


def database_name(dsn: str) -> str:
    """The database a DSN names."""
    return dsn.partition("?")[0].rsplit("/", 1)[1]


async def create_database(server_dsn: str, db: str) -> str:
    """Create database ``db`` on ``server_dsn``'s server, apply the migrations; its DSN."""
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{db}"')
    finally:
        await admin.close()
    dsn = database_dsn(server_dsn, db)
    await apply_migrations(dsn)
    return dsn


async def drop_database(server_dsn: str, db: str, timeout: float = 120.0) -> None:
    """``DROP DATABASE ... WITH (FORCE)``, retried while a session of another role (autovacuum
    after a bulk load, typically on a fresh cluster; a monitoring reader) is connected: we may
    not terminate those, but they end on their own."""
    admin = await asyncpg.connect(server_dsn)

    async def dropped() -> bool:
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
            return False
        return True

    try:
        await poll_until(dropped, timeout=timeout, interval=0.5, what=f"database {db} dropped")
    finally:
        await admin.close()


async def delete_topics(bootstrap: Target, prefix: str) -> None:
    """Remove the topics named ``prefix*`` so runs do not pile up on a long-lived broker
    (``bootstrap``: a PLAINTEXT address, or a secured broker's admin settings)."""
    admin = AIOKafkaAdminClient(**target_kwargs(bootstrap))
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


async def wait_for_leaders(bootstrap: Target, prefix: str, timeout: float = 30) -> None:
    """Until every partition of the topics named ``prefix*`` has a leader (saves a first
    producer a round of NotLeaderForPartition retries)."""
    admin = AIOKafkaAdminClient(**target_kwargs(bootstrap))
    await admin.start()

    async def led() -> bool:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        described = await admin.describe_topics(mine)
        return bool(mine) and all(
            t["error_code"] == 0
            and t["partitions"]
            and all(p["error_code"] == 0 and p["leader"] >= 0 for p in t["partitions"])
            for t in described
        )

    try:
        await poll_until(led, timeout=timeout, interval=0.2, what=f"leaders of {prefix}*")
    finally:
        await admin.close()


def issue_tokens(out: Path, principals: Iterable[tuple[str, PrincipalKind]]) -> dict[str, str]:
    """A random clear token per principal; their digests written to ``out`` (a tokens file
    for ``DCR_AUTH_TOKENS_FILE``). Returns principal id -> clear token."""
    ids = list(principals)
    clear = {pid: secrets.token_urlsafe(24) for pid, _ in ids}
    write_tokens_file(out, ids, clear)
    return clear


@dataclass(frozen=True)
class Isolation:
    """One run's own resources: ``topic_prefix`` on ``bootstrap`` and the database ``dsn``."""

    bootstrap: str
    topic_prefix: str
    dsn: str

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    def variables(self) -> dict[str, str]:
        """The ``DCR_*`` settings that point a service at these resources."""
        return {
            "DCR_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DCR_KAFKA_TOPIC_PREFIX": self.topic_prefix,
            "DCR_DB_DSN": self.dsn,
        }


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


def settings_variables(*settings: BaseSettings) -> dict[str, str]:
    """The ``DCR_*`` variables from which a child process builds ``settings`` again: every field
    a test set explicitly (defaults are left to the child), named by its settings class's
    prefix or alias. The one way a test's settings objects become a child's environment."""
    out: dict[str, str] = {}
    for one in settings:
        prefix = one.model_config.get("env_prefix") or ""
        for name in sorted(one.model_fields_set):
            alias = type(one).model_fields[name].validation_alias
            variable = alias if isinstance(alias, str) else f"{prefix}{name}".upper()
            out[variable] = _as_text(getattr(one, name))
    return out


def _as_text(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return f"PT{value.total_seconds():f}S"  # ISO 8601: what the loaders parse
    return str(value)


def service_env(
    variables: Mapping[str, str], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A service process's environment: ``base`` (default ``os.environ``) without any
    ``DCR_*`` setting of its own, plus ``DCR_ENV=test`` and ``variables``."""
    env = {
        k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("DCR_")
    }
    return {**env, "DCR_ENV": "test", **variables}


@asynccontextmanager
async def isolated(
    bootstrap: Target,
    server_dsn: str,
    *,
    label: str,
    partitions: int = 6,
    replication: int = 1,
    drop_topics: bool = True,
    on_cleanup_error: Callable[[str, Exception], None] | None = None,
) -> AsyncIterator[Isolation]:
    """A fresh migrated database ``dcr_<label>_<run>`` on ``server_dsn``'s server and topics
    ``<label>-<run>.*`` on ``bootstrap`` (``partitions`` each, ``replication`` copies); the
    database is dropped on exit, the topics too with ``drop_topics``. A failed clean-up step
    raises, or with ``on_cleanup_error`` is reported to it (what, exception) and the next
    step still runs."""
    run = uuid.uuid4().hex[:10]
    label_db = label.replace("-", "_")
    iso = Isolation(
        target_name(bootstrap), f"{label}-{run}.", database_dsn(server_dsn, f"dcr_{label_db}_{run}")
    )
    db = database_name(iso.dsn)
    await create_database(server_dsn, db)
    try:
        await ensure_topics(bootstrap, partitions, replication=replication, prefix=iso.topic_prefix)
        yield iso
    finally:
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            (f"database {db}", lambda: drop_database(server_dsn, db))
        ]
        if drop_topics:
            steps.append(
                (f"topics {iso.topic_prefix}*", lambda: delete_topics(bootstrap, iso.topic_prefix))
            )
        for what, step in steps:
            try:
                await step()
            except Exception as exc:
                if on_cleanup_error is None:
                    raise
                on_cleanup_error(what, exc)
