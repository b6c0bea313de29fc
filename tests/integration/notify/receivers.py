"""Real receivers for the notifier's tests: an SMTP server (the project's mail sink, aiosmtpd) and
an HTTP webhook receiver (stdlib ``ThreadingHTTPServer``) that verifies signatures, plus the
contacts file naming them."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from harness.process import free_port
from services.incident.notification import verify
from services.mailsink import controller

SECRET = "test-webhook-secret-0123456789abcdef-0123"


@dataclass
class Hook:
    """One request the webhook receiver accepted (2xx) or refused."""

    path: str
    body: bytes
    headers: dict[str, str]
    signature_ok: bool
    accepted: bool


@dataclass
class WebhookReceiver:
    """``on_request(hook) -> status`` decides the answer (default 200)."""

    port: int = field(default_factory=free_port)
    hooks: list[Hook] = field(default_factory=list)
    on_request: Callable[[Hook], int] = lambda _: 200
    #: Refuse (401) unsigned or badly signed requests (the notifier's); Alertmanager's own
    #: webhooks are not signed.
    require_signature: bool = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def accepted(self) -> list[Hook]:
        return [h for h in self.hooks if h.accepted]

    @contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = verify(
                    SECRET.encode(),
                    headers.get("x-dcr-timestamp", ""),
                    body,
                    headers.get("x-dcr-signature", ""),
                    datetime.now(UTC),
                )
                hook = Hook(self.path, body, headers, ok, False)
                signed_or_free = ok or not receiver.require_signature
                status = receiver.on_request(hook) if signed_or_free else 401
                hook.accepted = 200 <= status < 300
                receiver.hooks.append(hook)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


@contextmanager
def mail_sink(directory: Path) -> Iterator[int]:
    """A real SMTP server storing messages in ``directory``; yields its port."""
    port = free_port()
    sink = controller(directory, port=port)
    sink.start()
    try:
        yield port
    finally:
        sink.stop()


def mails(directory: Path) -> list[EmailMessage]:
    out = []
    for path in sorted(directory.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def write_contacts(path: Path, webhook_url: str) -> dict[str, dict[str, str]]:
    """Vesterbro: both rooms by e-mail, outreach by e-mail and webhook; ops by e-mail (all
    districts); a Sydhavn room that must hear nothing of Vesterbro. Returns the recipients."""
    recipients: list[dict[str, Any]] = [
        {"id": "halmtorv-staff", "name": "H", "facility": "halmtorv", "email": "h@rooms.test"},
        {"id": "mh-staff", "name": "M", "facility": "maendenes-hjem", "email": "m@rooms.test"},
        {
            "id": "outreach",
            "name": "O",
            "districts": ["vesterbro"],
            "email": "o@outreach.test",
            "webhook": f"{webhook_url}/hooks/outreach",
        },
        {"id": "ops", "name": "Ops", "districts": "all", "platform": True, "email": "ops@ops.test"},
        {"id": "sydhavn-staff", "name": "S", "facility": "sydhavn", "email": "s@rooms.test"},
    ]
    path.write_text(yaml.safe_dump({"recipients": recipients}), encoding="utf-8")
    return {r["id"]: r for r in recipients}
