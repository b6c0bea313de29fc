"""Pseudonymisation of client codes (keyed HMAC-SHA256), with a key id for rotation.

Invariants: a client's clear code is used only inside :meth:`Pseudonymiser.pseudonym` and is
never published, stored, logged or put in a metric label. Under one secret the same (scope, code)
always gives the same pseudonym, which makes exact unique-client counts possible; without the
secret a pseudonym can be neither reversed nor recomputed from a guessed code (client codes are
low-entropy, so the secret is all that protects them: see shared.settings.SecuritySettings).

The scope is where a code identifies one person: a facility (``facility`` scope: codes are issued
per room, the same code in two rooms may be two people) or the whole city (``city`` scope: one
code, one person city-wide). Every pseudonym is issued together with :attr:`Pseudonymiser.key_id`,
the name of the secret; pseudonyms made under different keys never match (docs/pseudonym-keys.md).
"""

from __future__ import annotations

import hashlib
import hmac

#: Scope id of city-wide pseudonyms ('@' is not allowed in facility ids, so it cannot clash).
CITY_SCOPE = "@city"


class Pseudonymiser:
    def __init__(self, secret: bytes, key_id: str = "k1") -> None:
        if len(secret) < 16:
            raise ValueError("pseudonym secret must be at least 16 bytes")
        self._secret = secret
        self.key_id = key_id

    def pseudonym(self, scope_id: str, client_code: str) -> str:
        """64 hex chars; ``scope_id`` is a facility id or :data:`CITY_SCOPE`."""
        message = f"{scope_id}\x1f{client_code.strip()}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def fingerprint(self, data: bytes) -> str:
        """Keyed digest of a request body (for idempotency checks; reveals nothing of the body)."""
        return hmac.new(self._secret, b"body\x1f" + data, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never show the secret
        return f"Pseudonymiser(<secret {self.key_id}>)"
