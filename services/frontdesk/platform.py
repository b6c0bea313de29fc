"""The desk's HTTP clients for the platform: the ingest APIs (``/v1/batch`` with the room's
token) and the projection's read API (figures, stock, alerts).

Invariant: anything but a per-line answer from an ingest API (unreachable, timeout, 5xx, an
unexpected 401) is reported as 503 for every line, so the tablet keeps those reports queued:
nothing is lost because the platform was away or misconfigured.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)


def unavailable(detail: str) -> dict[str, Any]:
    return {"status": 503, "body": detail}


class IngestClient:
    def __init__(
        self, urls: dict[str, str], tokens: dict[str, str], http: httpx.AsyncClient
    ) -> None:
        self._urls = urls
        self._tokens = tokens
        self._http = http

    async def send(
        self, service: str, facility: str, lines: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """One result per line (``status``, ``body``), in order."""
        token = self._tokens.get(facility)
        if token is None:
            log.error("no ingest token configured for facility %s", facility)
            return [unavailable("this room has no ingest credential configured")] * len(lines)
        text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        try:
            r = await self._http.post(
                f"{self._urls[service]}/v1/batch",
                content=text,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/x-ndjson",
                },
            )
        except httpx.HTTPError as exc:
            log.warning("%s unreachable: %s", service, type(exc).__name__)
            return [unavailable(f"{service} unreachable; the report waits")] * len(lines)
        if r.status_code != 200:
            log.warning("%s answered the batch with %d", service, r.status_code)
            return [unavailable(f"{service} answered {r.status_code}; the report waits")] * len(
                lines
            )
        return [
            {"status": int(res["status"]), "body": res["body"]}
            for res in map(json.loads, r.text.splitlines())
        ]


class ReadApi:
    """The projection's read API, read as the room itself: with the room's own token (a facility
    token may read its room's live and stock view and its district's drug alerts), or with
    ``token`` for every room when one is configured."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        room_tokens: dict[str, str],
        http: httpx.AsyncClient,
    ) -> None:
        self._base = base_url
        self._token = token
        self._room_tokens = room_tokens
        self._http = http

    async def get(self, facility: str, path: str, **params: str) -> dict[str, Any] | None:
        """The JSON answer for ``facility``'s desk, or None when the read API is unreachable or
        refuses (the screen then says the figures are unavailable)."""
        token = self._token or self._room_tokens.get(facility)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            r = await self._http.get(self._base + path, params=params, headers=headers)
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        answer: dict[str, Any] = r.json()
        return answer
