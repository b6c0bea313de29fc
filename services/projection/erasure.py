"""The right to erasure (GDPR art. 17) for one client code: which pseudonyms it names, and how
an erased pseudonym is recorded (docs/retention.md, "Right to erasure"). Pure: no I/O.

Rules:

* A code names one pseudonym per retained key (the current secret and, during a rotation, the
  previous one), in the city's ``pseudonym_scope``: with ``city`` scope, ``HMAC(k, @city, code)``;
  with ``facility`` scope only the room that issued the code (the same code in another room may be
  another person, whose data must not be erased), so the room must be named.
* An erased pseudonym is recorded as :func:`erased_digest` (sha256 of ``"<key id>:<pseudonym>"``),
  never the pseudonym or the code: the record can recognise the pseudonym in an event but cannot
  be reversed or dictionary-attacked without the pseudonym secret.
* The erased person's visit rows are not deleted but anonymised: their pseudonym is replaced by a
  random token (:func:`anonymous_token`, one per erased pseudonym, stored nowhere else) and their
  key id by :data:`ERASED_KEY`. Nobody, not even with the secret and the code, can find them again;
  the aggregates they were counted in (visits, distinct clients, durations) stay as published.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from shared.city import City, PseudonymScope
from shared.privacy import CITY_SCOPE, Pseudonymiser

#: ``visits.pseudonym_key`` of anonymised rows. Not a valid key id (``^[a-z0-9]{1,16}$``), so no
#: secret can ever be named like it.
ERASED_KEY = "-erased-"


@dataclass(frozen=True)
class ErasureTarget:
    """One pseudonym to erase (never logged: only counts are)."""

    key_id: str
    pseudonym: str

    @property
    def digest(self) -> bytes:
        return erased_digest(self.key_id, self.pseudonym)


def erased_digest(key_id: str, pseudonym: str) -> bytes:
    """What ``erased_pseudonyms`` stores for an erased pseudonym."""
    return hashlib.sha256(f"{key_id}:{pseudonym}".encode()).digest()


def anonymous_token() -> str:
    """The replacement of an erased pseudonym in its visit rows: random, 32 hex chars (a real
    pseudonym has 64), linked to nothing."""
    return secrets.token_hex(16)


def erasure_targets(
    city: City, keys: Iterable[Pseudonymiser], client_code: str, facility: str | None
) -> list[ErasureTarget]:
    """The pseudonyms ``client_code`` names under each retained key (see the module rules).

    ValueError (naming the problem) if the code is empty, the facility is unknown, or the scope
    is ``facility`` and no facility is given."""
    code = client_code.strip()
    if not code:
        raise ValueError("client code is empty")
    if facility is not None and facility not in city.facility_by_id:
        raise ValueError(f"unknown facility {facility!r}")
    if city.pseudonym_scope is PseudonymScope.CITY:
        scope = CITY_SCOPE
    elif facility is None:
        raise ValueError(
            "pseudonym_scope is 'facility': name the room that issued the code (--facility)"
        )
    else:
        scope = facility
    return [ErasureTarget(k.key_id, k.pseudonym(scope, code)) for k in keys]
