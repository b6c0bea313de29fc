"""Bearer-token authentication for the ingest APIs.

Tokens are configured in a YAML file (``DCR_AUTH_TOKENS_FILE``) as SHA-256 digests, never in clear:

    principals:
      - id: halmtorv             # a facility: may post only for itself
        kind: facility
        token_sha256: 3f2a...
      - id: sanitation-city      # a sanitation team: may post only street collections
        kind: sanitation
        token_sha256: 9b1c...

Every presented token is compared against every configured digest with ``hmac.compare_digest``,
so the time taken does not depend on which (or whether any) principal matched.
``python -m shared.auth generate`` writes a development tokens file and the clear tokens beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import secrets
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.city import load_city
from shared.settings import CitySettings


class PrincipalKind(StrEnum):
    FACILITY = "facility"
    SANITATION = "sanitation"
    OPS = "ops"  # platform/outreach on-call: acknowledges drug alerts


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


def generate(out: Path, clear_out: Path) -> None:
    """Write a tokens file for every facility in the city, one sanitation team and one ops
    on-call account."""
    city = load_city(CitySettings().file)
    ids = [(f.id, PrincipalKind.FACILITY) for f in city.facilities]
    ids.append(("sanitation-city", PrincipalKind.SANITATION))
    ids.append(("ops-oncall", PrincipalKind.OPS))
    clear = {pid: secrets.token_urlsafe(32) for pid, _ in ids}
    doc = {
        "principals": [
            {"id": pid, "kind": kind.value, "token_sha256": digest(clear[pid])} for pid, kind in ids
        ]
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    clear_out.write_text(yaml.safe_dump(clear, sort_keys=False), encoding="utf-8")
    clear_out.chmod(0o600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.auth", description=__doc__)
    parser.add_argument("command", choices=["generate"])
    parser.add_argument("--out", type=Path, required=True, help="tokens file (digests)")
    parser.add_argument("--clear-out", type=Path, required=True, help="clear tokens (dev only)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.force:
        print(f"{args.out} exists; keeping it")
        return 0
    generate(args.out, args.clear_out)
    print(f"wrote {args.out} and {args.clear_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
