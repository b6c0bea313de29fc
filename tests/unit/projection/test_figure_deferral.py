"""When a batch leaves its visit figures pending (consumer.Projector._defers): only a large
batch of a consumer that is behind, and never for longer than the configured delay; the batch
that reaches the end of what was fetched recomputes them (so caught up means exact)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from services.projection.consumer import FigureDeferral, Projector
from shared.settings import KafkaSettings
from tests.unit.projection import factory as f

A, B = TopicPartition("dcr.visits", 0), TopicPartition("dcr.visits", 1)


class _Consumer:
    """The consumer's high-water marks (the next offset each partition will have)."""

    def __init__(self, highs: dict[TopicPartition, int | None]) -> None:
        self._highs = highs

    def highwater(self, tp: TopicPartition) -> int | None:
        return self._highs.get(tp)


def _projector(highs: dict[TopicPartition, int | None], min_records: int = 10) -> Projector:
    p = Projector(
        pool=None,  # type: ignore[arg-type]  # deciding touches no database
        city=f.CITY,
        group="g",
        kafka=KafkaSettings(),
        deadletters=None,  # type: ignore[arg-type]
        figures=FigureDeferral(min_records=min_records, max_delay_s=5.0),
    )
    p.bind(_Consumer(highs))
    return p


def _batch(**last: int) -> dict[TopicPartition, list[Any]]:
    """Records per partition ending at the given offsets (10 each)."""
    tps = {"a": A, "b": B}
    return {
        tps[name]: [SimpleNamespace(offset=o) for o in range(end - 9, end + 1)]
        for name, end in last.items()
    }


def test_a_large_batch_with_records_after_it_defers() -> None:
    p = _projector({A: 100, B: 20})
    assert p._defers(_batch(a=9, b=19), kept=20)  # A has 90 records more


def test_the_batch_that_reaches_the_end_recomputes() -> None:
    p = _projector({A: 20, B: 20})
    assert not p._defers(_batch(a=19, b=19), kept=20)
    # an unknown high-water mark counts as the end: recomputing is never wrong
    assert not _projector({A: None})._defers(_batch(a=9), kept=10)


def test_a_live_batch_recomputes() -> None:
    p = _projector({A: 1000}, min_records=5_000)
    assert not p._defers(_batch(a=9), kept=10)


def test_figures_wait_no_longer_than_the_delay() -> None:
    p = _projector({A: 1000})
    p._deferring_since = time.monotonic() - 1.0
    assert p._defers(_batch(a=9), kept=10)
    p._deferring_since = time.monotonic() - 5.0
    assert not p._defers(_batch(a=9), kept=10)
    p._figures_flushed()  # a recompute of every pending figure starts the clock again
    assert p._defers(_batch(a=9), kept=10)


def _batch_applied() -> object:
    """A prepared batch as run() releases it after applying (nothing left to free)."""
    return SimpleNamespace(unique=[], decoded=[], by_tp={})


async def _run_until(
    p: Projector, batches: list[object | None], flush_fails: bool = False
) -> list[str]:
    """run() over ``batches`` (None: a poll that brought nothing), then stopped; returns what
    happened, in order: "apply" per batch applied, "flush" per call of flush_figures."""
    happened: list[str] = []
    halt = asyncio.Event()
    queue = list(batches)

    async def fetch(timeout_ms: int, max_records: int) -> object | None:
        if not queue:
            halt.set()  # stopped once every batch was fetched; this poll brings nothing
            return None
        return queue.pop(0)

    async def apply_fetched(prepared: object | None) -> int:
        if prepared is not None:
            happened.append("apply")
        return 0

    async def flush_figures() -> int:
        happened.append("flush")
        if flush_fails:
            raise OSError("database unreachable")
        return 0

    p.fetch = fetch  # type: ignore[method-assign, assignment]
    p.apply_fetched = apply_fetched  # type: ignore[method-assign]
    p.flush_figures = flush_figures  # type: ignore[method-assign]
    await asyncio.wait_for(p.run(halt, poll_timeout_ms=10, max_records=10, backoff_s=0), 10)
    return happened


async def test_an_idle_poll_and_a_stop_recompute_pending_figures() -> None:
    happened = await _run_until(_projector({}), [_batch_applied(), None, _batch_applied()])
    assert happened[:3] == ["apply", "flush", "apply"]  # after the idle poll
    assert happened.count("apply") == 2
    assert happened[-1] == "flush"  # and when stopped


async def test_a_stop_whose_recompute_fails_still_stops(caplog: pytest.LogCaptureFixture) -> None:
    """The figures then stay pending (committed) for the next projector that starts."""
    happened = await _run_until(_projector({}), [_batch_applied()], flush_fails=True)
    assert happened[0] == "apply"
    assert happened[-1] == "flush"
    assert "pending visit figures left for the next start (OSError)" in caplog.text
