"""Signed session cookies (pure: no I/O).

A cookie is ``base64url(json) "." base64url(hmac_sha256(secret, json))``; the JSON names the staff
member, their room and the expiry. Invariants: a cookie whose signature does not verify, or that
has expired, yields no session; the secret never leaves the server. The cookie is set HttpOnly and
SameSite=Strict by the app; state-changing requests must also carry the ``X-Frontdesk`` header
(a custom header another site cannot send without a CORS preflight we never allow): CSRF-safe.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

COOKIE = "dcr_frontdesk"
CSRF_HEADER = "X-Frontdesk"


@dataclass(frozen=True, slots=True)
class Session:
    username: str
    facility: str
    expires: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    def __init__(self, secret: bytes, ttl: timedelta) -> None:
        self._secret = secret
        self.ttl = ttl

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, b"frontdesk-session\x1f" + body, hashlib.sha256).digest()

    def issue(self, username: str, facility: str, now: datetime) -> str:
        body = json.dumps(
            {"u": username, "f": facility, "exp": int((now + self.ttl).timestamp())},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def read(self, cookie: str | None, now: datetime) -> Session | None:
        """The session in ``cookie`` if its signature verifies and it has not expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        body_b64, mac_b64 = cookie.split(".")
        try:
            body, mac = _unb64(body_b64), _unb64(mac_b64)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        data = json.loads(body)
        expires = datetime.fromtimestamp(int(data["exp"]), tz=now.tzinfo)
        if expires <= now:
            return None
        return Session(username=str(data["u"]), facility=str(data["f"]), expires=expires)
