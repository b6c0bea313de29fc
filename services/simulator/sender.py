"""HTTP delivery of intended reports to the ingest APIs.

Invariants:

* one report is one logical event: every attempt carries the same ``Idempotency-Key`` and the
  same body, so the service publishes it at most once however often it is retried;
* 503 / 429 / other 5xx answers and transport errors (refused connection, timeout) are retried
  until the report is accepted or the caller cancels: the delay is at least the server's
  ``Retry-After`` (capped at ``RetryPolicy.max_retry_after_s``), else an exponential backoff with
  jitter capped at ``RetryPolicy.max_delay_s``;
* any other 4xx is a bug (in the simulator or the API): it is not retried, and is logged once per
  (event, status, field) with the field named by the 422 answer - never with the body;
* 409 (the key was used before with a different body) is not retried either: it means a previous
  run used the same run id with other parameters.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from services.simulator.model import IntendedReport, Service

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_delay_s: float = 0.2
    #: Cap of the exponential backoff (used when the server gives no Retry-After).
    max_delay_s: float = 10.0
    #: A Retry-After longer than this is shortened to it.
    max_retry_after_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, jitter: float = 1.0) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` >= 1 failed)."""
        backoff = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1)) * jitter
        if retry_after is None:
            return backoff
        return min(self.max_retry_after_s, max(retry_after, backoff))


@dataclass(frozen=True, slots=True)
class Result:
    """How a report ended. ``retries`` = attempts - 1."""

    accepted: bool
    status: int | None
    attempts: int
    response: Mapping[str, Any]
    replayed: bool = False
    error: str | None = None

    @property
    def retries(self) -> int:
        return self.attempts - 1


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def describe_error(response: httpx.Response) -> str:
    """A loggable reason: the fields a 422 names (``occurred_at: is in the future``) or the
    string ``detail``. Submitted values are never included (the APIs do not echo them)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.reason_phrase or "no detail"
    if isinstance(detail, list):
        parts = []
        for err in detail:
            loc = (
                [str(x) for x in err.get("loc", ()) if x != "body"] if isinstance(err, dict) else []
            )
            msg = err.get("msg", "") if isinstance(err, dict) else str(err)
            parts.append(f"{'.'.join(loc) or 'body'}: {msg}")
        return "; ".join(parts)
    return str(detail)


class Sender:
    """Posts reports with their bearer token and Idempotency-Key; see the module invariants."""

    def __init__(
        self,
        clients: Mapping[Service, httpx.AsyncClient],
        tokens: Mapping[str, str],
        *,
        policy: RetryPolicy = RetryPolicy(),
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        self._clients = clients
        self._tokens = tokens
        self._policy = policy
        self._sleep = sleep
        # Jitter only spreads retries out; it does not touch the model's random streams.
        rng = random.Random()  # noqa: S311 (not cryptography)
        self._jitter = jitter or (lambda: rng.uniform(0.8, 1.2))
        self._logged: set[tuple[str, int, str]] = set()

    async def send(
        self,
        report: IntendedReport,
        key: str,
        visit_id: str | None = None,
        on_retry: Callable[[], None] | None = None,
    ) -> Result:
        """Deliver ``report`` (with ``visit_id`` added to the body when given). Returns when it is
        accepted or refused for good; retries forever otherwise (cancel to give up), calling
        ``on_retry`` before each retry."""
        body = dict(report.body)
        if visit_id is not None:
            body["visit_id"] = visit_id
        headers = {
            "Authorization": f"Bearer {self._tokens[report.principal]}",
            "Idempotency-Key": key,
        }
        client = self._clients[report.service]
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = await client.post(report.path, json=body, headers=headers)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                status: int | None = None
            else:
                status = response.status_code
                if status == 202:
                    return Result(
                        True,
                        status,
                        attempt,
                        _json(response),
                        replayed=response.headers.get("Idempotent-Replayed") == "true",
                    )
                reason = describe_error(response)
                if status not in RETRYABLE_STATUS:
                    self._log_refusal(report, status, reason)
                    return Result(False, status, attempt, _json(response), error=reason)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            delay = self._policy.delay(attempt, retry_after, self._jitter())
            if attempt == 1 or attempt % 10 == 0:
                log.warning(
                    "%s %s (%s): %s; retrying in %.1fs with the same Idempotency-Key (attempt %d)",
                    report.service,
                    report.path,
                    report.event,
                    status if status is not None else reason,
                    delay,
                    attempt,
                )
            if on_retry is not None:
                on_retry()
            await self._sleep(delay)

    def _log_refusal(self, report: IntendedReport, status: int, reason: str) -> None:
        what = (report.event, status, reason)
        if what in self._logged:
            return
        self._logged.add(what)
        if status == 409:
            log.error(
                "%s %s (%s): 409 %s - this run id was used before with other parameters; "
                "change --seed or --start",
                report.service,
                report.path,
                report.event,
                reason,
            )
        else:
            log.error(
                "BUG: %s %s (%s) refused with %d: %s (not retried; further identical refusals "
                "are only counted)",
                report.service,
                report.path,
                report.event,
                status,
                reason,
            )


def _json(response: httpx.Response) -> Mapping[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
