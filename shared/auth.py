"""Bearer-token authentication for the ingest APIs, the read API and every ``/metrics``.

Tokens are configured in a YAML file (``DCR_AUTH_TOKENS_FILE``) as SHA-256 digests, never in clear:

    principals:
      - id: halmtorv             # a facility: may post only for itself
        kind: facility
        token_sha256: 3f2a...
      - id: sanitation-city      # a sanitation team: may post only street collections
        kind: sanitation
        token_sha256: 9b1c...
      - id: ops                  # operations staff: every internal read
        kind: ops
        token_sha256: ...
      - id: analyst              # health-department analysts: district and city figures
        kind: analyst
        token_sha256: ...
      - id: prometheus           # the scraper: /metrics only
        kind: metrics
        token_sha256: ...

What each kind may read is decided by the read API (services.projection.access) and by
``/metrics`` (shared.http_auth); a facility's token reads its own room's live and stock view.

Every presented token is compared against every configured digest with ``hmac.compare_digest``,
so the time taken does not depend on which (or whether any) principal matched.
``python -m shared.auth generate`` writes a development tokens file and the clear tokens beside it;
run again, it keeps the existing tokens and only adds principals that are missing (so a checkout
whose tokens predate the read roles gets them without the facilities' tokens changing).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.city import City, load_city
from shared.settings import CitySettings


class PrincipalKind(StrEnum):
    FACILITY = "facility"
    SANITATION = "sanitation"
    #: everything internal (read API, /metrics); acknowledges drug alerts (incident service)
    OPS = "ops"
    #: district and city figures; no live per-room view
    ANALYST = "analyst"
    #: the Prometheus scraper: /metrics only
    METRICS = "metrics"


#: The development read principals ``generate`` adds beside the facilities (id -> kind).
READ_PRINCIPALS: dict[str, PrincipalKind] = {
    "ops": PrincipalKind.OPS,
    "analyst": PrincipalKind.ANALYST,
    "prometheus": PrincipalKind.METRICS,
}


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]
    kind: PrincipalKind
    token_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", repr=False)]


class TokenFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    principals: tuple[Principal, ...]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRegistry:
    def __init__(self, principals: tuple[Principal, ...]) -> None:
        self._principals = principals

    @classmethod
    def from_file(cls, path: Path) -> TokenRegistry:
        with path.open(encoding="utf-8") as fh:
            return cls(TokenFile.model_validate(yaml.safe_load(fh)).principals)

    def authenticate(self, token: str) -> Principal | None:
        """The principal owning ``token``, or None. Constant time in the token's value."""
        presented = digest(token).encode()
        found: Principal | None = None
        for p in self._principals:
            if hmac.compare_digest(presented, p.token_sha256.encode()):
                found = p
        return found


def dev_principals(city: City) -> list[tuple[str, PrincipalKind]]:
    """Every development principal: each facility of ``city``, one sanitation team, the ops
    on-call account, the read roles of :data:`READ_PRINCIPALS`."""
    ids = [(f.id, PrincipalKind.FACILITY) for f in city.facilities]
    ids.append(("sanitation-city", PrincipalKind.SANITATION))
    ids.append(("ops-oncall", PrincipalKind.OPS))  # the drug alert on-call (acknowledges)
    ids.extend(READ_PRINCIPALS.items())
    return ids


def write_tokens_file(
    out: Path, principals: Sequence[tuple[str, PrincipalKind]], clear: Mapping[str, str]
) -> None:
    """Write the tokens file (``DCR_AUTH_TOKENS_FILE``) of ``principals``: each with the
    SHA-256 digest of its clear token in ``clear``, never the token itself."""
    doc = {
        "principals": [
            {"id": pid, "kind": kind.value, "token_sha256": digest(clear[pid])}
            for pid, kind in principals
        ]
    }
    _write(out, yaml.safe_dump(doc, sort_keys=False), owner_only=False)


def generate(
    city: City, out: Path, clear_out: Path, metrics_credential: Path | None = None
) -> list[str]:
    """Write a tokens file (digests) and the clear tokens for :func:`dev_principals` of
    ``city``.

    Tokens already in ``clear_out`` are kept (their digests rewritten); missing principals get a
    new random token. With ``metrics_credential``, the scraper's clear token is written there
    alone (Prometheus' ``credentials_file``). Returns the ids that got a new token.
    """
    clear: dict[str, str] = {}
    if clear_out.exists() and out.exists():
        loaded = yaml.safe_load(clear_out.read_text(encoding="utf-8")) or {}
        clear = {str(k): str(v) for k, v in loaded.items()}
    ids = dev_principals(city)
    added = [pid for pid, _ in ids if pid not in clear]
    for pid in added:
        clear[pid] = secrets.token_urlsafe(32)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(clear_out, yaml.safe_dump(clear, sort_keys=False), owner_only=True)
    write_tokens_file(out, ids, clear)
    if metrics_credential is not None:
        _write(metrics_credential, clear["prometheus"], owner_only=True)
    return added


def _write(path: Path, text: str, *, owner_only: bool) -> None:
    """Write ``text`` (UTF-8). ``owner_only`` (clear tokens): the file is created, or reset, with
    mode 0600 before anything is written to it, so no other user can ever read a token."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if owner_only else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        if owner_only:
            os.fchmod(fh.fileno(), 0o600)
        fh.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.auth", description=__doc__)
    parser.add_argument("command", choices=["generate"])
    parser.add_argument("--out", type=Path, required=True, help="tokens file (digests)")
    parser.add_argument("--clear-out", type=Path, required=True, help="clear tokens (dev only)")
    parser.add_argument(
        "--metrics-credential-out",
        type=Path,
        default=None,
        help="file for the Prometheus scraper's clear token (credentials_file)",
    )
    parser.add_argument("--force", action="store_true", help="new tokens for every principal")
    args = parser.parse_args(argv)
    if args.force:
        args.clear_out.unlink(missing_ok=True)
    city = load_city(CitySettings().file)
    added = generate(city, args.out, args.clear_out, args.metrics_credential_out)
    print(f"wrote {args.out} and {args.clear_out}; new tokens: {', '.join(added) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
