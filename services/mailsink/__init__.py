"""Development mail sink: an SMTP server (aiosmtpd) that stores every message it accepts as a
file ``<dir>/<UTC time>-<n>.eml``, for ``make up`` (127.0.0.1:1025, ``.state/mail/``) and the
tests. It accepts any sender and recipient and relays nothing: never expose it.

Each file is written to a temporary name and renamed, so a reader never sees half a message.
The envelope recipients are kept in an ``X-Sink-Rcpt-To`` header (Bcc recipients included).
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class FileStore:
    """aiosmtpd handler: one ``.eml`` file per accepted message."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seq = itertools.count(1)
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        rcpt = ", ".join(envelope.rcpt_tos).encode()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{os.getpid()}-{next(self._seq)}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(b"X-Sink-Rcpt-To: " + rcpt + b"\r\n" + raw)
        tmp.rename(self.directory / name)
        return "250 Message accepted for delivery"


def controller(directory: Path, host: str = "127.0.0.1", port: int = 1025, **kw: Any) -> Controller:
    """A started-on-demand SMTP server (``.start()``/``.stop()``) storing into ``directory``."""
    return Controller(FileStore(directory), hostname=host, port=port, **kw)
