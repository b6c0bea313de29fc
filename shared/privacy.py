"""Pseudonymisation of client codes (keyed HMAC-SHA256).

Invariant: a client's clear facility code is used only inside :meth:`Pseudonymiser.pseudonym` and
is never published, stored, logged or put in a metric label. The same (facility, code) always gives
the same pseudonym under one secret, which makes exact unique-client counts possible; without the
secret the pseudonym cannot be reversed or recomputed from a guessed code.
"""

from __future__ import annotations

import hashlib
import hmac


class Pseudonymiser:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("pseudonym secret must be at least 16 bytes")
        self._secret = secret

    def pseudonym(self, facility_id: str, client_code: str) -> str:
        """64 hex chars. Client codes are scoped to the facility that issued them."""
        message = f"{facility_id}\x1f{client_code.strip()}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def fingerprint(self, data: bytes) -> str:
        """Keyed digest of a request body (for idempotency checks; reveals nothing of the body)."""
        return hmac.new(self._secret, b"body\x1f" + data, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never show the secret
        return "Pseudonymiser(<secret>)"
