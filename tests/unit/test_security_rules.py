"""Pseudonyms and fingerprints are stable across releases (stored facts and idempotency records
made before an upgrade must still match), a pseudonym secret needs 32 characters (and passes the
entropy checks of shared.settings.secret_weakness; the Pseudonymiser itself refuses fewer than
16 bytes), and ``python -m shared.auth generate`` writes tokens files that authenticate every
principal, keeping the tokens already issued unless forced."""

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
from shared.settings import MIN_SECRET_CHARS, CitySettings, secret_weakness

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


def test_a_secret_needs_32_characters_and_the_pseudonymiser_refuses_fewer_than_16_bytes() -> None:
    strong = "abcdefghijklmnopqrstuvwxyzABCDEF"  # 32 distinct characters, 160 bits by the estimate
    assert MIN_SECRET_CHARS == 32 and len(strong) == 32
    assert secret_weakness(strong) is None
    assert secret_weakness(strong[:31]) == "shorter than 32 characters"
    assert secret_weakness("ab" * 16) == "fewer than 12 distinct characters"
    Pseudonymiser(b"x" * 16)  # the last line of defence only: settings refuse it first
    with pytest.raises(ValueError, match=r"^pseudonym secret must be at least 16 bytes$"):
        Pseudonymiser(b"x" * 15)
    assert repr(Pseudonymiser(SECRET)) == "Pseudonymiser(<secret k1>)"
    assert repr(Pseudonymiser(SECRET, key_id="k7")) == "Pseudonymiser(<secret k7>)"
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
    expected["ops-oncall"] = PrincipalKind.OPS
    expected |= {
        "ops": PrincipalKind.OPS,
        "analyst": PrincipalKind.ANALYST,
        "prometheus": PrincipalKind.METRICS,
    }
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
    assert [p["id"] for p in doc["principals"]] == list(expected)


def test_generate_keeps_issued_tokens_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, clear_out = tmp_path / "tokens.yaml", tmp_path / "clear.yaml"
    args = ["generate", "--out", str(out), "--clear-out", str(clear_out)]
    assert auth.main(args) == 0
    first = yaml.safe_load(clear_out.read_text(encoding="utf-8"))
    assert "new tokens: " in capsys.readouterr().out
    assert auth.main(args) == 0  # again: every issued token still authenticates
    assert yaml.safe_load(clear_out.read_text(encoding="utf-8")) == first
    assert f"wrote {out} and {clear_out}; new tokens: none" in capsys.readouterr().out
    assert all(TokenRegistry.from_file(out).authenticate(t) for t in first.values())
    assert auth.main([*args, "--force"]) == 0  # forced: new tokens, the old ones stop working
    registry = TokenRegistry.from_file(out)
    assert not any(registry.authenticate(t) for t in first.values())
    assert set(yaml.safe_load(clear_out.read_text(encoding="utf-8"))) == set(first)
    assert f"new tokens: {', '.join(first)}" in capsys.readouterr().out


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
        ("--force", "new tokens for every principal"),
        ("--metrics-credential-out", ""),
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
