"""The pipelined loop prepares a batch in slices (yielding to the event loop between them, so
the transaction in flight is answered promptly): the result must equal preparing it at once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition

from services.projection import consumer
from services.projection.consumer import Projector
from shared.settings import KafkaSettings
from tests.unit.projection import factory as f

BASE = datetime(2026, 10, 26, 12, 0, tzinfo=UTC)  # the stream spans the DST change before it


def _projector() -> Projector:
    return Projector(
        pool=None,  # type: ignore[arg-type]  # preparing touches no database
        city=f.CITY,
        group="g",
        kafka=KafkaSettings(),
        deadletters=None,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("slice_size", [1, 7, 1000])
async def test_sliced_preparation_equals_preparing_at_once(
    slice_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = f.random_stream(seed=3, n=600, base=BASE)
    assert len({e.id for e in events}) < len(events)  # it has duplicates
    by_tp: dict[TopicPartition, list[f.RawRecord]] = {}
    for offset, env in enumerate(events):
        tp = TopicPartition(env.topic, offset % 3)
        by_tp.setdefault(tp, []).append(f.record(env, offset, partition=tp.partition))
    bad = f.record(events[0], 10_000, value=b"{not json")  # rejected in both
    by_tp.setdefault(TopicPartition(events[0].topic, 0), []).append(bad)
    monkeypatch.setattr(consumer, "PREPARE_SLICE", slice_size)
    p = _projector()

    at_once = p._prepare(by_tp)  # type: ignore[arg-type]
    sliced = await p._prepare_yielding(by_tp)  # type: ignore[arg-type]

    assert [d.record for d in sliced.decoded] == [d.record for d in at_once.decoded]
    assert [(r.record, r.reason) for r in sliced.rejected] == [
        (r.record, r.reason) for r in at_once.rejected
    ]
    assert [d.record for d in sliced.unique] == [d.record for d in at_once.unique]
    assert len(sliced.unique) < len(sliced.decoded)
    assert sliced.changes == at_once.changes
    assert sliced.changes.visit_starts and sliced.changes.daily  # a real mix was projected
