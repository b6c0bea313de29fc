"""Staff accounts of the rooms: one per person, each bound to one room.

The file (``DCR_FRONTDESK_STAFF_FILE``) holds scrypt hashes, never passwords:

    staff:
      - username: halmtorv-anna
        facility: halmtorv
        scrypt: <salt hex>$<hash hex>

``python -m services.frontdesk.staff generate`` writes one development account per facility and
the clear passwords beside it (``dev-staff.yaml``, mode 600); ``add`` adds or resets one person.
Verification takes the same work whether or not the user exists (no user enumeration by timing).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import secrets
import sys
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.city import City, load_city
from shared.settings import CitySettings

# scrypt cost (RFC 7914): n=2**14, r=8 uses 16 MiB and ~50 ms per check.
_N, _R, _P = 2**14, 8, 1
_DUMMY = "00" * 16 + "$" + "00" * 32


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"{salt.hex()}${digest.hex()}"


def _check(password: str, stored: str) -> bool:
    salt_hex, _, digest_hex = stored.partition("$")
    again = hash_password(password, bytes.fromhex(salt_hex)).partition("$")[2]
    return hmac.compare_digest(again, digest_hex)


class StaffMember(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    username: Annotated[str, Field(pattern=r"^[a-z0-9._-]{1,64}$")]
    facility: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]
    scrypt: Annotated[str, Field(pattern=r"^[0-9a-f]{32}\$[0-9a-f]{64}$", repr=False)]


class StaffFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    staff: tuple[StaffMember, ...] = ()


class StaffDirectory:
    """The accounts of a staff file; re-read when the file changes (people added or reset take
    effect without restarting the desk)."""

    def __init__(self, staff: tuple[StaffMember, ...], path: Path | None = None) -> None:
        self._by_name = {s.username: s for s in staff}
        self._path = path
        self._mtime = _mtime(path)

    @classmethod
    def from_file(cls, path: Path) -> StaffDirectory:
        return cls(_load(path).staff, path)

    def verify(self, username: str, password: str) -> StaffMember | None:
        """The member if the password is theirs, else None (same cost either way)."""
        if self._path is not None and _mtime(self._path) != self._mtime:
            self._mtime = _mtime(self._path)
            self._by_name = {s.username: s for s in _load(self._path).staff}
        member = self._by_name.get(username)
        ok = _check(password, member.scrypt if member else _DUMMY)
        return member if ok and member is not None else None


def _mtime(path: Path | None) -> float | None:
    return path.stat().st_mtime if path is not None and path.exists() else None


def _load(path: Path) -> StaffFile:
    if not path.exists():
        return StaffFile()
    with path.open(encoding="utf-8") as fh:
        return StaffFile.model_validate(yaml.safe_load(fh) or {})


def _save(path: Path, staff: StaffFile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(staff.model_dump(), sort_keys=False), encoding="utf-8")


def add(path: Path, username: str, facility: str, password: str) -> None:
    """Add ``username`` (or reset their password)."""
    current = [s for s in _load(path).staff if s.username != username]
    current.append(
        StaffMember(username=username, facility=facility, scrypt=hash_password(password))
    )
    _save(path, StaffFile(staff=tuple(current)))


def generate(city: City, out: Path, clear_out: Path) -> None:
    """One development account ``<facility>-staff`` per facility of ``city``."""
    clear: dict[str, str] = {}
    members = []
    for f in city.facilities:
        name, password = f"{f.id}-staff", secrets.token_urlsafe(12)
        clear[name] = password
        members.append(StaffMember(username=name, facility=f.id, scrypt=hash_password(password)))
    _save(out, StaffFile(staff=tuple(members)))
    clear_out.write_text(yaml.safe_dump(clear, sort_keys=False), encoding="utf-8")
    clear_out.chmod(0o600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.frontdesk.staff", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="development accounts, one per facility")
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--clear-out", type=Path, required=True)
    one = sub.add_parser("add", help="add a person (password read from stdin)")
    one.add_argument("--file", type=Path, required=True)
    one.add_argument("username")
    one.add_argument("facility")
    args = parser.parse_args(argv)
    if args.command == "generate":
        if args.out.exists():
            print(f"{args.out} exists; keeping it")
            return 0
        generate(load_city(CitySettings().file), args.out, args.clear_out)
        print(f"wrote {args.out} and {args.clear_out}")
        return 0
    add(args.file, args.username, args.facility, sys.stdin.readline().rstrip("\n"))
    print(f"{args.username} can sign in at {args.facility}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
