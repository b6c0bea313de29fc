"""Unit harness for the ingest services: each app runs in-process on in-memory fakes (no I/O).

The clock is fixed at :data:`NOW`; :func:`ago` builds ``occurred_at`` values relative to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from services.incident.app import create_app as create_incident
from services.intake.app import create_app as create_intake
from services.supply.app import create_app as create_supply
from shared.auth import Principal, PrincipalKind, TokenRegistry, digest
from shared.city import load_city
from shared.ingest.api import IngestDeps
from shared.ingest.ports import InMemoryIdempotencyStore, InMemoryPublisher
from shared.privacy import Pseudonymiser
from shared.settings import CitySettings, IngestSettings
from tests.support import serve

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

#: principal id -> clear token
TOKENS = {
    "halmtorv": "tok-halmtorv",
    "nordvest": "tok-nordvest",
    "sanitation-city": "tok-sanitation",
}
_KINDS = {"sanitation-city": PrincipalKind.SANITATION}


def ago(minutes: float = 0) -> str:
    return (NOW - timedelta(minutes=minutes)).isoformat()


def bearer(principal: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {TOKENS[principal]}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


@dataclass
class Harness:
    client: httpx.AsyncClient
    publisher: InMemoryPublisher
    store: InMemoryIdempotencyStore
    deps: IngestDeps


def make_deps(service: str) -> IngestDeps:
    return IngestDeps(
        service=service,
        city=load_city(CitySettings().file),
        tokens=TokenRegistry(
            tuple(
                Principal(
                    id=pid, kind=_KINDS.get(pid, PrincipalKind.FACILITY), token_sha256=digest(token)
                )
                for pid, token in TOKENS.items()
            )
        ),
        pseudonymiser=Pseudonymiser(b"unit-test-secret-0123456789abcdef"),
        publisher=InMemoryPublisher(),
        idempotency=InMemoryIdempotencyStore(),
        settings=IngestSettings(),
        clock=lambda: NOW,
    )


async def _harness(
    create: Callable[[IngestDeps], FastAPI],
    service: str,
) -> AsyncIterator[Harness]:
    deps = make_deps(service)
    assert isinstance(deps.publisher, InMemoryPublisher)
    assert isinstance(deps.idempotency, InMemoryIdempotencyStore)
    async with serve(create(deps)) as client:
        yield Harness(client, deps.publisher, deps.idempotency, deps)


@pytest.fixture
async def intake() -> AsyncIterator[Harness]:
    async for h in _harness(create_intake, "intake"):
        yield h


@pytest.fixture
async def supply() -> AsyncIterator[Harness]:
    async for h in _harness(create_supply, "supply"):
        yield h


@pytest.fixture
async def incident() -> AsyncIterator[Harness]:
    async for h in _harness(create_incident, "incident"):
        yield h
