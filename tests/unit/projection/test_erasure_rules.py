"""The erasure rules (services.projection.erasure): which pseudonyms a code names, per scope and
retained key, and what is recorded of them."""

from __future__ import annotations

import secrets

import pytest
from pydantic import SecretStr

from services.projection.erase import ErasureConfig, PreviousKeySettings, retained_keys
from services.projection.erasure import ERASED_KEY, anonymous_token, erased_digest, erasure_targets
from shared.city import PseudonymScope
from shared.privacy import CITY_SCOPE, Pseudonymiser
from shared.settings import Environment, SecuritySettings
from tests.unit.projection.factory import CITY

K1, K2 = Pseudonymiser(b"1" * 32, "k1"), Pseudonymiser(b"2" * 32, "k2")


def test_facility_scope_names_only_the_issuing_room_under_every_retained_key() -> None:
    assert CITY.pseudonym_scope is PseudonymScope.FACILITY
    targets = erasure_targets(CITY, [K1, K2], " HT-0001 ", "halmtorv")
    assert [(t.key_id, t.pseudonym) for t in targets] == [
        ("k1", K1.pseudonym("halmtorv", "HT-0001")),
        ("k2", K2.pseudonym("halmtorv", "HT-0001")),
    ]
    assert K1.pseudonym("nordvest", "HT-0001") not in {t.pseudonym for t in targets}


def test_city_scope_names_the_city_wide_pseudonym() -> None:
    city = CITY.model_copy(update={"pseudonym_scope": PseudonymScope.CITY})
    [target] = erasure_targets(city, [K1], "HT-0001", None)
    assert target.pseudonym == K1.pseudonym(CITY_SCOPE, "HT-0001")


@pytest.mark.parametrize(
    ("code", "facility", "why"),
    [
        ("HT-0001", None, "name the room"),
        ("HT-0001", "nowhere", "unknown"),
        ("  ", "halmtorv", "empty"),
    ],
)
def test_what_cannot_be_erased_safely_is_refused(code: str, facility: str | None, why: str) -> None:
    with pytest.raises(ValueError, match=why) as refused:
        erasure_targets(CITY, [K1], code, facility)
    assert code.strip() == "" or code not in str(refused.value)  # the code is never in a message


def test_the_record_is_neither_the_pseudonym_nor_linkable_without_it() -> None:
    [t] = erasure_targets(CITY, [K1], "HT-0001", "halmtorv")
    assert t.digest == erased_digest("k1", t.pseudonym) != erased_digest("k2", t.pseudonym)
    assert t.pseudonym.encode() not in t.digest and len(t.digest) == 32
    assert anonymous_token() != anonymous_token() and len(anonymous_token()) == 32
    assert not ERASED_KEY.isalnum()  # never a valid key id (^[a-z0-9]{1,16}$)


def _config(current: str, previous: str | None, previous_id: str | None) -> ErasureConfig:
    return ErasureConfig(
        security=SecuritySettings(
            env=Environment.PROD, pseudonym_secret=SecretStr(current), pseudonym_key_id="k2"
        ),
        previous=PreviousKeySettings(
            secret=SecretStr(previous) if previous is not None else None, key_id=previous_id
        ),
    )


def test_a_retained_previous_key_is_erased_too() -> None:
    current, previous = secrets.token_hex(32), secrets.token_hex(32)
    assert [k.key_id for k in retained_keys(_config(current, None, None))] == ["k2"]
    with pytest.raises(ValueError, match="PREVIOUS_KEY_ID"):
        # an unnamed previous key could not be told apart
        retained_keys(_config(current, previous, None))
    keys = retained_keys(_config(current, previous, "k1"))
    assert [k.key_id for k in keys] == ["k2", "k1"]
    assert keys[1].pseudonym("halmtorv", "HT-0001") == Pseudonymiser(
        previous.encode(), "k1"
    ).pseudonym("halmtorv", "HT-0001")
