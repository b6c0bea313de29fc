"""Facilities posting reports the way a well-behaved client does: every report has its own
Idempotency-Key, and a 503 (or a dropped connection) is retried later with the same key and
body, honouring Retry-After, until it is answered 202. A ledger of every attempt is kept so a
test can check that exactly the accepted reports reached the read models, each once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from shared.city import City

#: (service, path, what it adds to district_daily) per report kind
KINDS: dict[str, tuple[str, str, str]] = {
    "refusal": ("intake", "/v1/refusals", "refusals"),
    "sharps": ("supply", "/v1/sharps/returned", "sharps_returned_count"),
}


@dataclass
class Report:
    key: str
    facility: str
    kind: str
    body: dict[str, Any]
    #: how much this report adds to its district_daily column
    amount: int
    day: date
    outcomes: list[str] = field(default_factory=list)
    event_id: str | None = None
    retry_at: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.event_id is not None


def make_report(rng: random.Random, facility: str, n: int, city: City, now: datetime) -> Report:
    kind = rng.choice(sorted(KINDS))
    at = now - timedelta(minutes=rng.randint(1, 600), seconds=rng.randint(0, 59))
    body: dict[str, Any] = {"facility_id": facility, "occurred_at": at.isoformat()}
    if kind == "refusal":
        body["reason"] = rng.choice(["capacity", "intoxicated", "other"])
        amount = 1
    else:
        amount = rng.randint(1, 40)
        body["count"] = amount
    return Report(
        key=f"{facility}-{n}-{rng.getrandbits(32):08x}",
        facility=facility,
        kind=kind,
        body=body,
        amount=amount,
        day=at.astimezone(city.zone).date(),
    )


class Traffic:
    """Facility clients posting to the ingest services at ``urls`` (service name -> base URL)."""

    def __init__(
        self,
        urls: dict[str, str],
        tokens: dict[str, str],
        city: City,
        facilities: list[str],
        *,
        seed: int,
        pace_s: float = 0.02,
        max_per_facility: int = 400,
        timeout_s: float = 15.0,
    ) -> None:
        self.urls = urls
        self.tokens = tokens
        self.city = city
        self.facilities = facilities
        self.rng = random.Random(seed)
        self.pace_s = pace_s
        self.max_per_facility = max_per_facility
        self.timeout_s = timeout_s
        self.reports: list[Report] = []
        self.stop = asyncio.Event()
        self.unexpected: list[str] = []

    # --- counters (for polling and the report) -------------------------------------------

    @property
    def accepted(self) -> int:
        return sum(r.accepted for r in self.reports)

    def outcomes(self) -> Counter[str]:
        return Counter(o for r in self.reports for o in r.outcomes)

    @property
    def refused_503(self) -> int:
        return self.outcomes()["503"]

    # --- one attempt ------------------------------------------------------------------------

    async def attempt(self, client: httpx.AsyncClient, r: Report) -> None:
        service, path, _ = KINDS[r.kind]
        headers = {
            "Authorization": f"Bearer {self.tokens[r.facility]}",
            "Idempotency-Key": r.key,
        }
        try:
            resp = await client.post(
                self.urls[service] + path, json=r.body, headers=headers, timeout=self.timeout_s
            )
        except httpx.TransportError as exc:
            r.outcomes.append(type(exc).__name__)
            r.retry_at = time.monotonic() + 0.5
            return
        r.outcomes.append(str(resp.status_code))
        if resp.status_code == 202:
            event_id = resp.json()["event_id"]
            if r.event_id is not None and event_id != r.event_id:
                self.unexpected.append(f"{r.key}: a replay answered another event id")
            r.event_id = event_id
        elif resp.status_code == 503:
            if not resp.headers.get("Retry-After", "").isdigit():
                self.unexpected.append(f"{r.key}: 503 without Retry-After")
            r.retry_at = time.monotonic() + float(resp.headers.get("Retry-After", "1"))
        else:
            self.unexpected.append(f"{r.key}: {resp.status_code} {resp.text[:200]}")
            r.retry_at = float("inf")

    # --- the clients ------------------------------------------------------------------------

    async def _facility(self, facility: str) -> None:
        pending: list[Report] = []
        async with httpx.AsyncClient() as client:
            for n in range(self.max_per_facility):
                if self.stop.is_set():
                    break
                r = make_report(self.rng, facility, n, self.city, datetime.now(UTC))
                self.reports.append(r)
                await self.attempt(client, r)
                if not r.accepted:
                    pending.append(r)
                now = time.monotonic()
                for p in [p for p in pending if p.retry_at <= now]:
                    await self.attempt(client, p)
                pending = [p for p in pending if not p.accepted]
                await asyncio.sleep(self.pace_s)  # pacing of the facility's reports

    async def run(self) -> None:
        """Post until :attr:`stop` is set (or every facility sent ``max_per_facility``)."""
        await asyncio.gather(*(self._facility(f) for f in self.facilities))

    async def drain(self, timeout: float = 60) -> None:
        """Retry every report not accepted yet (same key and body) until all are accepted."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while True:
                pending = [r for r in self.reports if not r.accepted]
                if not pending or time.monotonic() > deadline:
                    break
                wait = min(r.retry_at for r in pending) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(min(wait, 1.0))  # honouring Retry-After
                for r in pending:
                    if r.retry_at <= time.monotonic():
                        await self.attempt(client, r)
        missing = [r.key for r in self.reports if not r.accepted]
        assert not missing, f"{len(missing)} report(s) never accepted, e.g. {missing[:3]}"

    # --- what the read models must show -------------------------------------------------------

    def expected_daily(self) -> dict[tuple[str, date, str], int]:
        """(district, day, district_daily column) -> sum over accepted reports."""
        out: Counter[tuple[str, date, str]] = Counter()
        for r in self.reports:
            if r.accepted:
                district = self.city.facility_by_id[r.facility].district
                out[(district, r.day, KINDS[r.kind][2])] += r.amount
        return dict(out)
