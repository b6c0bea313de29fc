"""A test-only composition root of intake that holds requests in flight at known points, so the
SIGKILL test (tests/faults/test_service_kill.py) knows exactly what its kill interrupts.

``uvicorn tests.faults.held_intake:create_app --factory`` is the real intake app (real Kafka
publisher, real PostgreSQL key store) whose publisher is wrapped once the lifespan has built it:
the first ``DCR_TEST_HOLD_PASS`` publishes go through; every later request is held until the
process dies, alternately

* BEFORE publishing: its Idempotency-Key is claimed, nothing is on the topic;
* AFTER Kafka acknowledged it: the record is on the topic, the key is not yet marked published.

Each hold is announced by an empty file ``before-<event id>`` / ``after-<event id>`` in
``DCR_TEST_HOLD_DIR``.

The hook cannot be enabled in production: it exists only in tests/ (not in the image, not run by
deploy/scripts), and services.intake.app neither imports it nor reads these variables.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.intake.app import create_app as create_intake
from shared.events.envelope import Envelope
from shared.ingest.api import IngestDeps
from shared.ingest.ports import EventPublisher

HOLD_DIR = "DCR_TEST_HOLD_DIR"
HOLD_PASS = "DCR_TEST_HOLD_PASS"


class HoldingPublisher:
    """Wraps the real publisher; see the module docstring. Held calls never return."""

    def __init__(self, inner: EventPublisher, announce_dir: Path, passing: int) -> None:
        self.inner = inner
        self.announce_dir = announce_dir
        self.passing = passing
        self.calls = 0

    async def publish(self, envelope: Envelope) -> None:
        n = self.calls
        self.calls += 1
        if n < self.passing:
            await self.inner.publish(envelope)
            return
        if (n - self.passing) % 2 == 0:
            await self._hold(f"before-{envelope.id}")
        await self.inner.publish(envelope)
        await self._hold(f"after-{envelope.id}")

    async def _hold(self, name: str) -> None:
        (self.announce_dir / name).touch()
        await asyncio.Event().wait()  # until SIGKILL

    async def ping(self) -> bool:
        return await self.inner.ping()


def create_app() -> FastAPI:
    app = create_intake()
    real_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with real_lifespan(a):
            deps: IngestDeps = a.state.deps
            deps.publisher = HoldingPublisher(
                deps.publisher, Path(os.environ[HOLD_DIR]), int(os.environ[HOLD_PASS])
            )
            yield

    app.router.lifespan_context = lifespan
    return app
