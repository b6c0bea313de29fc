"""Secrets and pseudonyms: unsafe defaults refused, pseudonyms keyed and stable, tokens hashed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.auth import Principal, PrincipalKind, TokenRegistry, digest
from shared.privacy import Pseudonymiser
from shared.settings import DEV_SECRET, SecuritySettings


def test_prod_refuses_the_dev_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCR_ENV", "prod")
    monkeypatch.delenv("DCR_PSEUDONYM_SECRET", raising=False)
    with pytest.raises(ValidationError, match="DCR_PSEUDONYM_SECRET"):
        SecuritySettings()
    monkeypatch.setenv("DCR_PSEUDONYM_SECRET", "short")
    with pytest.raises(ValidationError):
        SecuritySettings()
    monkeypatch.setenv("DCR_PSEUDONYM_SECRET", "x" * 40)
    assert SecuritySettings().pseudonym_secret.get_secret_value() == "x" * 40


def test_dev_may_use_the_dev_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCR_ENV", "dev")
    monkeypatch.delenv("DCR_PSEUDONYM_SECRET", raising=False)
    assert SecuritySettings().pseudonym_secret.get_secret_value() == DEV_SECRET
    assert DEV_SECRET not in repr(SecuritySettings())


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
