"""Secrets and pseudonyms: unsafe defaults refused, pseudonyms keyed and stable, tokens hashed."""

from __future__ import annotations

import secrets

import pytest
import yaml
from pydantic import ValidationError

from shared.auth import Principal, PrincipalKind, TokenRegistry, digest
from shared.privacy import Pseudonymiser
from shared.settings import (
    DEV_SECRET,
    REPO_ROOT,
    Environment,
    SecuritySettings,
    secret_weakness,
)

STRONG = secrets.token_hex(32)


@pytest.mark.parametrize("env", [None, "prod", "test", "dev"])
def test_no_secret_configured_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, env: str | None
) -> None:
    if env is None:
        monkeypatch.delenv("DCR_ENV", raising=False)
    else:
        monkeypatch.setenv("DCR_ENV", env)
    monkeypatch.delenv("DCR_PSEUDONYM_SECRET", raising=False)
    with pytest.raises(ValidationError, match="DCR_PSEUDONYM_SECRET is not set"):
        SecuritySettings()


@pytest.mark.parametrize("env", [None, "prod", "test"])
def test_the_dev_secret_is_refused_unless_dev_mode_is_explicit(
    monkeypatch: pytest.MonkeyPatch, env: str | None
) -> None:
    if env is None:
        monkeypatch.delenv("DCR_ENV", raising=False)
    else:
        monkeypatch.setenv("DCR_ENV", env)
    monkeypatch.setenv("DCR_PSEUDONYM_SECRET", DEV_SECRET)
    with pytest.raises(ValidationError, match="development secret"):
        SecuritySettings()
    monkeypatch.setenv("DCR_ENV", "dev")
    assert SecuritySettings().secret_bytes() == DEV_SECRET.encode()
    assert DEV_SECRET not in repr(SecuritySettings())


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("short", "shorter than 32"),
        ("a" * 32, "distinct characters"),
        ("x" * 40, "distinct characters"),
        ("abcdefghijkl" * 3, "repeats"),
        ("0123456789abcdefghijklmnopqrstuvwxyz" * 2, "repeats"),
        ("992a93455c71fedd36ac9bbc439952c0", "entropy"),  # 32 hex chars: 117 bits estimated
    ],
)
def test_weak_secrets_are_refused_in_every_mode(
    monkeypatch: pytest.MonkeyPatch, secret: str, why: str
) -> None:
    for env in ("prod", "test", "dev"):
        monkeypatch.setenv("DCR_ENV", env)
        monkeypatch.setenv("DCR_PSEUDONYM_SECRET", secret)
        with pytest.raises(ValidationError, match="too weak"):
            SecuritySettings()
    assert secret_weakness(secret) is not None and why in str(secret_weakness(secret))


def test_a_random_secret_and_key_id_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DCR_ENV", raising=False)
    monkeypatch.setenv("DCR_PSEUDONYM_SECRET", STRONG)
    monkeypatch.setenv("DCR_PSEUDONYM_KEY_ID", "k7")
    settings = SecuritySettings()
    assert settings.env is Environment.PROD  # unset means the strictest mode
    assert settings.secret_bytes() == STRONG.encode() and settings.pseudonym_key_id == "k7"
    assert STRONG not in repr(settings)


def test_pseudonyms_are_keyed_stable_and_scoped_to_the_facility() -> None:
    a, b = Pseudonymiser(b"k" * 32), Pseudonymiser(b"j" * 32)
    p1 = a.pseudonym("halmtorv", "HT-0042")
    assert p1 == a.pseudonym("halmtorv", "HT-0042")
    assert p1 != b.pseudonym("halmtorv", "HT-0042")  # another secret, another pseudonym
    assert p1 != a.pseudonym("amager", "HT-0042")
    assert "HT-0042" not in p1 and len(p1) == 64
    with pytest.raises(ValueError):
        Pseudonymiser(b"short")


def test_tokens_are_matched_by_digest_only() -> None:
    registry = TokenRegistry(
        (
            Principal(id="halmtorv", kind=PrincipalKind.FACILITY, token_sha256=digest("t1")),
            Principal(
                id="sanitation-city", kind=PrincipalKind.SANITATION, token_sha256=digest("t2")
            ),
        )
    )
    found = registry.authenticate("t1")
    assert found is not None and found.id == "halmtorv"
    assert registry.authenticate("t2") is not None
    assert registry.authenticate("t3") is None
    assert registry.authenticate("") is None
    assert "t1" not in repr(found) and digest("t1") not in repr(found)


@pytest.mark.parametrize("secret", [DEV_SECRET, "a" * 32])
def test_docker_compose_environment_refuses_a_public_or_weak_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    """The services' environment in docker-compose.yml (DCR_ENV=prod, secret required) with
    the repository's development secret or a weak one: they refuse to start."""
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    env = compose["x-service-env"]
    assert env["DCR_ENV"] == "prod"
    assert str(env["DCR_PSEUDONYM_SECRET"]).startswith("${DCR_PSEUDONYM_SECRET:?")
    monkeypatch.setenv("DCR_ENV", env["DCR_ENV"])
    monkeypatch.setenv("DCR_PSEUDONYM_SECRET", secret)
    with pytest.raises(ValidationError, match="DCR_PSEUDONYM_SECRET"):
        SecuritySettings()
