"""Pseudonyms and fingerprints are stable across releases (stored facts and idempotency records
made before an upgrade must still match), secrets shorter than 16 bytes are refused, and
``python -m shared.auth generate`` writes tokens files that authenticate every principal."""

from __future__ import annotations

import hashlib
import hmac
import re
import stat
from pathlib import Path

import pytest
import yaml

from shared import auth
from shared.auth import PrincipalKind, TokenRegistry, digest
from shared.city import load_city
from shared.privacy import Pseudonymiser
from shared.settings import CitySettings

SECRET = b"0123456789abcdef0123456789abcdef"


def _hmac(message: bytes) -> str:
    return hmac.new(SECRET, message, hashlib.sha256).hexdigest()


def test_pseudonyms_are_hmac_sha256_of_facility_and_trimmed_code() -> None:
    """The derivation is part of the stored data: changing it splits every client in two."""
    p = Pseudonymiser(SECRET)
    assert p.pseudonym("halmtorv", "HT-0042") == _hmac(b"halmtorv\x1fHT-0042")
    assert p.pseudonym("halmtorv", "  HT-0042 \n") == p.pseudonym("halmtorv", "HT-0042")


def test_body_fingerprints_are_keyed_and_separated_from_pseudonyms() -> None:
    p = Pseudonymiser(SECRET)
    body = b'{"reason": "capacity"}'
    assert p.fingerprint(body) == _hmac(b"body\x1f" + body)
    assert p.fingerprint(body) != Pseudonymiser(SECRET[::-1]).fingerprint(body)
    assert p.fingerprint(body) != p.fingerprint(body + b" ")


def test_a_secret_of_16_bytes_is_enough_and_15_is_not() -> None:
    Pseudonymiser(b"x" * 16)
    with pytest.raises(ValueError, match=r"^pseudonym secret must be at least 16 bytes$"):
        Pseudonymiser(b"x" * 15)
    assert repr(Pseudonymiser(SECRET)) == "Pseudonymiser(<secret>)"
    assert SECRET.decode() not in repr(Pseudonymiser(SECRET))


def test_digest_is_the_sha256_of_the_token() -> None:
    assert digest("t1") == hashlib.sha256(b"t1").hexdigest()


def test_generate_writes_digests_and_clear_tokens_that_authenticate(tmp_path: Path) -> None:
    out, clear_out = tmp_path / "state" / "auth" / "tokens.yaml", tmp_path / "clear.yaml"
    assert auth.main(["generate", "--out", str(out), "--clear-out", str(clear_out)]) == 0
    registry = TokenRegistry.from_file(out)
    clear = yaml.safe_load(clear_out.read_text(encoding="utf-8"))
    city = load_city(CitySettings().file)
    expected = {f.id: PrincipalKind.FACILITY for f in city.facilities}
    expected["sanitation-city"] = PrincipalKind.SANITATION
    assert set(clear) == set(expected)
    for pid, token in clear.items():
        principal = registry.authenticate(token)
        assert principal is not None and (principal.id, principal.kind) == (pid, expected[pid])
        assert len(token) == 43  # 32 random bytes, url-safe base64
    assert len(set(clear.values())) == len(clear)
    assert not any(token in out.read_text(encoding="utf-8") for token in clear.values())
    assert stat.S_IMODE(clear_out.stat().st_mode) == 0o600
    assert list(clear) == list(expected)  # in the city's order, as written
    doc = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert [p["id"] for p in doc["principals"]] == [
        *(f.id for f in city.facilities),
        "sanitation-city",
    ]


def test_generate_keeps_an_existing_file_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, clear_out = tmp_path / "tokens.yaml", tmp_path / "clear.yaml"
    out.write_text("keep me", encoding="utf-8")
    args = ["generate", "--out", str(out), "--clear-out", str(clear_out)]
    assert auth.main(args) == 0
    assert out.read_text(encoding="utf-8") == "keep me" and not clear_out.exists()
    assert f"{out} exists; keeping it" in capsys.readouterr().out
    assert auth.main([*args, "--force"]) == 0
    assert TokenRegistry.from_file(out).authenticate("nothing") is None
    assert f"wrote {out} and {clear_out}" in capsys.readouterr().out


def test_the_command_line_is_documented_and_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        auth.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m shared.auth")
    assert "Bearer-token authentication" in text
    for option, meaning in (
        ("--out", "tokens file (digests)"),
        ("--clear-out", "clear tokens (dev only)"),
        ("--force", "overwrite existing files"),
        ("{generate}", ""),
    ):
        assert option in text and re.search(rf"\s{re.escape(meaning)}\n", text), option
    for bad in (
        ["generate"],
        ["rotate", "--out", "a", "--clear-out", "b"],
        ["generate", "--out", "a"],
        ["generate", "--clear-out", "b"],
    ):
        with pytest.raises(SystemExit) as done:
            auth.main(bad)
        assert done.value.code == 2
