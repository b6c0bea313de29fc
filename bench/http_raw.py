"""A minimal HTTP/1.1 keep-alive client for load generation (JSON in, JSON out).

httpx's AsyncClient costs the load generator about as much CPU per request as the service spends
answering it, and more with many requests in flight (encode/httpx#3215); on a 2-core machine the
client then competes with the service it measures. This client writes the request bytes and reads
the status, headers and a Content-Length body, nothing else, so the figures show the service.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any


class RawConnection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        )
        self._writer.write(head.encode() + data)
        reader = self._reader
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("connection closed by the server")
        status = int(status_line.split()[1])
        length = 0
        close = False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise ValueError("chunked responses are not supported")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        payload = await reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, json.loads(payload) if payload else {}

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


#: Connections idle longer than this are not reused (uvicorn closes them after 5 s).
MAX_IDLE_S = 3.0


class RawClient:
    """A pool of keep-alive connections: a caller takes an idle one or opens a new one; with
    ``max_connections``, at most that many requests are in flight and the others wait for a
    connection (a load generator must not flood a slow server with new connections: the
    waiting shows in latencies measured from the intended send time)."""

    def __init__(self, host: str, port: int, max_connections: int | None = None) -> None:
        self.host = host
        self.port = port
        self._idle: list[tuple[float, RawConnection]] = []
        self._all: list[RawConnection] = []
        self._slots = asyncio.Semaphore(max_connections) if max_connections else None

    async def post(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        if self._slots is None:
            return await self._post(path, body, headers)
        async with self._slots:
            return await self._post(path, body, headers)

    async def _post(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        conn = None
        while self._idle and conn is None:
            since, conn = self._idle.pop()
            if time.monotonic() - since > MAX_IDLE_S:
                conn.close()
                conn = None
        if conn is None:
            conn = self._open()
        try:
            result = await conn.post(path, body, headers)
        except BaseException:
            conn.close()
            raise
        self._idle.append((time.monotonic(), conn))
        return result

    def _open(self) -> RawConnection:
        conn = RawConnection(self.host, self.port)
        self._all.append(conn)
        return conn

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._idle.clear()
