"""A process stopping never hangs on a client that does not answer: every shutdown step is
bounded (``shared.bootstrap.close_within``), an overrun is logged and forced or abandoned, and
the app's exit goes on. Fakes stand for a producer whose stop waits forever (aiokafka's does
while a batch is undelivered), a pool that never hands out a connection, and a worker that
ignores its cancellation."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from shared import bootstrap
from shared.bootstrap import close_within, running
from shared.ingest.kafka_publisher import KafkaEventPublisher
from shared.ingest.pg_idempotency import PostgresIdempotencyStore
from shared.settings import KafkaSettings


async def forever() -> None:
    await asyncio.Event().wait()


async def test_a_step_that_never_finishes_is_given_up_after_its_bound_and_forced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    forced: list[bool] = []
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        done = await close_within(0.2, forever, "test client", lambda: forced.append(True))
    assert done is False
    assert forced == [True]
    assert time.monotonic() - started < 5
    assert "test client did not close within 0.2 s; forced" in caplog.text


async def test_a_step_that_finishes_in_time_is_not_forced() -> None:
    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    forced: list[bool] = []
    assert await close_within(5, close, "test client", lambda: forced.append(True)) is True
    assert closed == [True] and forced == []


async def test_an_error_of_the_step_is_not_taken_for_an_overrun() -> None:
    async def close() -> None:
        raise ConnectionResetError("peer gone")

    with pytest.raises(ConnectionResetError):
        await close_within(5, close, "test client")


class _StuckBroker:
    """A producer whose stop waits for ever (aiokafka with an undelivered batch)."""

    stops = 0

    async def stop(self) -> None:
        type(self).stops += 1
        await forever()


async def test_the_publisher_closes_within_its_publish_timeout_when_the_producer_hangs() -> None:
    settings = KafkaSettings(publish_timeout_s=0.2)
    publisher = KafkaEventPublisher(cast(Any, _StuckBroker()), settings)
    started = time.monotonic()
    await publisher.close()
    assert time.monotonic() - started < 5
    assert publisher.broker is None and _StuckBroker.stops == 1
    assert await publisher.ping() is False


class _PoolWithoutConnections:
    """A pool whose every connection is held elsewhere: acquiring waits for ever."""

    @asynccontextmanager
    async def acquire(self, timeout: float | None = None) -> AsyncIterator[Any]:
        await forever()
        yield None  # pragma: no cover - never reached


async def test_the_idempotency_store_gives_up_its_queued_marks_after_its_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = PostgresIdempotencyStore(cast(Any, _PoolWithoutConnections()))
    await store.mark_published("halmtorv", "key-1")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        await store.close(within_s=0.2)
    assert time.monotonic() - started < 5
    assert "published marks' writer did not close" in caplog.text
    assert "key-1" not in caplog.text and "halmtorv" not in caplog.text


async def test_a_worker_ignoring_its_cancellation_does_not_hold_the_exit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(bootstrap, "CLOSE_WITHIN_S", 0.2)
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # swallows every cancellation, as a buggy worker might

    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        async with running(stubborn(), "stubborn") as task:
            await asyncio.sleep(0)  # only yield: let the worker start
    assert time.monotonic() - started < 5
    assert not task.done()
    assert "background task stubborn did not close within" in caplog.text
    release.set()
    await asyncio.wait({task})


async def test_a_worker_stops_at_once_when_it_honours_its_cancellation() -> None:
    async with running(forever(), "polite") as task:
        await asyncio.sleep(0)  # only yield: let the worker start
    assert task.cancelled()


async def test_a_worker_that_failed_raises_its_error_on_exit() -> None:
    async def broken() -> None:
        raise RuntimeError("worker broke")

    with pytest.raises(RuntimeError, match="worker broke"):
        async with running(broken(), "broken") as task:
            await asyncio.wait({task})
