"""``make erase`` / ``python -m services.projection.erase [--facility ROOM]``: erase one client
code's person-level data (GDPR art. 17; rules in services.projection.erasure, docs/retention.md).

The code is read from stdin (a prompt without echo on a terminal), never from argv (argv is
visible in ``ps``), and is never printed or logged: the command reports counts only. The
settings are built once in :func:`main` (:class:`ErasureConfig`: the platform's, as for rebuild
and reconcile, and the pseudonym keys): the secret as for the ingest services
(``DCR_PSEUDONYM_SECRET``, ``DCR_PSEUDONYM_KEY_ID``); during a key rotation the previous key is
erased too when ``DCR_PSEUDONYM_PREVIOUS_SECRET`` / ``DCR_PSEUDONYM_PREVIOUS_KEY_ID`` are set.

One transaction: the person's visit rows are anonymised, their idempotency envelopes deleted, the
copies of their events in the dedup records emptied, and the erased digests recorded so that the
projection (live and in a rebuild) keeps them out again.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.projection.erasure import ERASED_KEY, ErasureTarget, anonymous_token, erasure_targets
from shared.bootstrap import Platform
from shared.privacy import Pseudonymiser
from shared.settings import SecuritySettings

Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


class PreviousKeySettings(BaseSettings):
    """``DCR_PSEUDONYM_PREVIOUS_*``: the key before a rotation, while it is still retained."""

    model_config = SettingsConfigDict(env_prefix="DCR_PSEUDONYM_PREVIOUS_")

    secret: SecretStr | None = None
    key_id: str | None = None


@dataclass(frozen=True)
class ErasureConfig:
    """Everything ``make erase`` is configured with, built once at its entry point (each part
    from its ``DCR_*`` variables by default; tests pass their own)."""

    platform: Platform = field(default_factory=Platform)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    previous: PreviousKeySettings = field(default_factory=PreviousKeySettings)


def retained_keys(config: ErasureConfig) -> list[Pseudonymiser]:
    """The current key and, if configured, the previous one (both needed while retained)."""
    current, previous = config.security, config.previous
    keys = [Pseudonymiser(current.secret_bytes(), current.pseudonym_key_id)]
    if previous.secret is not None:
        if not previous.key_id or previous.key_id == current.pseudonym_key_id:
            raise ValueError("DCR_PSEUDONYM_PREVIOUS_KEY_ID must name the previous key")
        keys.append(Pseudonymiser(previous.secret.get_secret_value().encode(), previous.key_id))
    return keys


async def erase(conn: Conn, targets: list[ErasureTarget], now: datetime) -> dict[str, int]:
    """Erase the targets in one transaction; counts per kind (no identifiers)."""
    counts = {"visits_anonymised": 0, "idempotency_deleted": 0, "dedup_values_emptied": 0}
    async with conn.transaction():
        for t in targets:
            counts["visits_anonymised"] += _n(
                await conn.execute(
                    """UPDATE visits SET client_pseudonym = $1, pseudonym_key = $2
                       WHERE client_pseudonym = $3 AND pseudonym_key = $4""",
                    anonymous_token(),
                    ERASED_KEY,
                    t.pseudonym,
                    t.key_id,
                )
            )
            counts["idempotency_deleted"] += _n(
                await conn.execute(
                    "DELETE FROM ingest_idempotency WHERE strpos(envelope, $1) > 0", t.pseudonym
                )
            )
            counts["dedup_values_emptied"] += _n(
                await conn.execute(
                    """UPDATE projection_events SET value = NULL
                       WHERE value IS NOT NULL AND position(convert_to($1, 'UTF8') IN value) > 0""",
                    t.pseudonym,
                )
            )
            await conn.execute(
                """INSERT INTO erased_pseudonyms (digest, erased_at) VALUES ($1, $2)
                   ON CONFLICT (digest) DO NOTHING""",
                t.digest,
                now,
            )
    return counts


def _n(status: str) -> int:
    return int(status.rsplit(" ", 1)[1])


def read_code() -> str:
    """The client code from a no-echo prompt (terminal) or stdin's first line."""
    if sys.stdin.isatty():
        return getpass.getpass("client code (not shown): ")
    return sys.stdin.readline()


async def _main(config: ErasureConfig, facility: str | None) -> int:
    targets = erasure_targets(config.platform.city, retained_keys(config), read_code(), facility)
    conn = await config.platform.connect()
    try:
        counts = await erase(conn, targets, datetime.now(UTC))
    finally:
        await conn.close()
    print(f"erased under {len(targets)} key(s): {counts}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dcr-erase", description=__doc__)
    parser.add_argument(
        "--facility", help="the room that issued the code (required with pseudonym_scope facility)"
    )
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_main(ErasureConfig(), args.facility))
    except ValidationError as exc:  # settings: their messages only, never the inputs (secrets)
        print(f"erase refused: {'; '.join(e['msg'] for e in exc.errors())}", file=sys.stderr)
        return 2
    except ValueError as exc:  # the message names the setting or argument, never the code
        print(f"erase refused: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
