"""The notifier's channels: e-mail over SMTP and signed webhooks over HTTP(S).

Both raise :class:`SendError` (with a reason safe to log: no message content) when the receiver
did not accept; the notifier then retries with backoff. Both carry the delivery id (e-mail
``Message-ID``, webhook ``X-DCR-Delivery``) so that a receiver can drop a repeat.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from email.message import EmailMessage
from email.utils import formatdate
from uuid import UUID

import httpx

from services.incident.notification import Message, body_bytes, sign
from services.incident.settings import NotifySettings


class SendError(RuntimeError):
    pass


class EmailSender:
    def __init__(self, settings: NotifySettings) -> None:
        self._s = settings

    def _send(self, to: str, msg: EmailMessage) -> None:
        with smtplib.SMTP(
            self._s.smtp_host, self._s.smtp_port, timeout=self._s.smtp_timeout_s
        ) as c:
            c.send_message(msg, to_addrs=[to])

    async def send(self, to: str, message: Message, delivery_id: UUID) -> None:
        msg = EmailMessage()
        msg["From"] = self._s.smtp_from
        msg["To"] = to
        msg["Subject"] = message.subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = f"<{delivery_id}@dcr-platform>"
        msg.set_content(message.text)
        try:
            await asyncio.to_thread(self._send, to, msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"smtp: {type(exc).__name__}") from exc


class WebhookSender:
    def __init__(self, settings: NotifySettings, client: httpx.AsyncClient) -> None:
        self._secret = settings.webhook_secret.get_secret_value().encode()
        self._client = client

    async def send(self, url: str, message: Message, delivery_id: UUID) -> None:
        body = body_bytes(message)
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-DCR-Timestamp": str(ts),
            "X-DCR-Signature": sign(self._secret, ts, body),
            "X-DCR-Delivery": str(delivery_id),
        }
        try:
            r = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SendError(f"webhook: {type(exc).__name__}") from exc
        if not r.is_success:
            raise SendError(f"webhook: HTTP {r.status_code}")
