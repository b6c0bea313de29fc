"""A retry or resend of an event that came in one of the few batches before (it crossed a batch
boundary) is left out of the next batch's first occurrences, like an in-batch duplicate, so
that batch's optimistic claim does not meet a stored key (issue 18: resends ~30 minutes after
their report made 21 of 26 catch-up batches take the slow path). If the batch that held it
applied it as new just before, it is decided against the stored event (a duplicate, or a
conflict); otherwise the batch is applied as if it were unique, and the claim decides, as
before."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition

from services.projection import domain
from services.projection.consumer import Prepared, Projector
from services.projection.domain import Decoded, split_earlier
from shared.events.envelope import Envelope
from shared.events.vocabulary import SupplyItem
from tests.unit.projection import factory as f

BASE = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _decoded(events: list[Envelope], first: int = 0) -> list[Decoded]:
    decoded, rejected = domain.decode_batch(
        [f.record(e, first + i) for i, e in enumerate(events)], f.CITY
    )
    assert rejected == []
    return decoded


def _keys(events: list[Envelope]) -> frozenset[tuple[str, str]]:
    return frozenset((e.source, str(e.id)) for e in events)


def _split(
    events: list[Envelope],
    earlier: list[frozenset[tuple[str, str]]],
    never: frozenset[tuple[str, str]] = frozenset(),
) -> tuple[list[Envelope], list[Envelope]]:
    unique = _decoded(events, 100)
    kept, again = split_earlier(unique, frozenset(d.dedup_key for d in unique), earlier, never)
    by_record = {id(d): e for d, e in zip(unique, events, strict=True)}
    return [by_record[id(d)] for d in kept], [by_record[id(d)] for d in again]


def _visits(n: int, start: int = 0) -> list[Envelope]:
    return [
        f.visit_started(f"v-{i}", BASE + timedelta(minutes=i), client=i)
        for i in range(start, start + n)
    ]


def test_a_repeat_of_an_earlier_batch_is_left_out_and_the_rest_kept_in_order() -> None:
    older, newer = _visits(3), _visits(3, start=3)
    fresh = _visits(2, start=10)
    batch = [fresh[0], older[1], fresh[1], newer[2]]

    kept, again = _split(batch, [_keys(older), _keys(newer)])

    assert kept == [fresh[0], fresh[1]]
    assert again == [older[1], newer[2]]


def test_a_batch_without_repeats_is_returned_as_it_is() -> None:
    unique = _decoded(_visits(3, start=5))
    keys = frozenset(d.dedup_key for d in unique)

    kept, again = split_earlier(unique, keys, [_keys(_visits(3))])

    assert kept is unique
    assert again == []


def test_a_key_with_another_report_is_a_repeat_too_decided_against_the_stored_event() -> None:
    first = f.visit_started("v-1", BASE, client=1)
    changed = f.wrap(first.data.model_copy(update={"booth": 9}), first.time, id=first.id)

    assert _split([changed], [_keys([first])]) == ([], [changed])


def test_a_key_in_two_earlier_batches_or_an_in_batch_conflict_is_left_to_the_claim() -> None:
    event = _visits(1)[0]
    other = _visits(1, start=1)[0]

    # reported in two of the batches before: which one was applied is the claim's to say
    assert _split([event], [_keys([event]), _keys([event])]) == ([event], [])
    # a key this batch also holds with another report (conflicting: none of them counts)
    key = (event.source, str(event.id))
    assert _split([event, other], [_keys([event])], never=frozenset({key})) == (
        [event, other],
        [],
    )


# --- the projector -------------------------------------------------------------------------------


_projector = f.offline_projector


TP = TopicPartition("dcr.visits", 0)


def _prepare(p: Projector, events: list[Envelope], first: int) -> Prepared:
    return p._prepare({TP: [f.record(e, first + i) for i, e in enumerate(events)]})


def _applied(p: Projector, batch: Prepared) -> None:
    """What a committed batch leaves for the next (Projector._apply, after its commit), each
    of its unique events applied as new."""
    p._applied.append((batch.seq, batch.claim.keys))


def test_the_next_batch_leaves_out_a_resend_and_counts_it_as_a_duplicate() -> None:
    p = _projector()
    visits = _visits(4)
    first = _prepare(p, visits[:3], 0)
    second = _prepare(p, [visits[3], visits[1]], 3)  # v-1 resent

    assert [d.event.id for d in second.unique] == [str(visits[3].id)]
    assert [d.event.id for d in second.duplicates] == [str(visits[1].id)]
    assert [d.event.id for d in second.again] == [str(visits[1].id)]
    assert second.claim.keys == {(visits[3].source, str(visits[3].id))}  # not claimed again
    assert [*second.changes.visit_starts] == [("halmtorv", "v-3")]  # nor projected again

    _applied(p, first)
    assert p._repeats_applied(second)


def test_a_resend_counts_as_a_duplicate_only_if_the_batch_before_applied_it_as_new() -> None:
    p = _projector()
    visits = _visits(3)
    first = _prepare(p, visits[:2], 0)
    second = _prepare(p, [visits[2], visits[0]], 2)
    assert second.again

    assert not p._repeats_applied(second)  # the batch before is not applied (yet, or failed)
    p._applied.append((first.seq, frozenset()))  # applied, but v-0 was not new there
    assert not p._repeats_applied(second)
    p._applied.append((first.seq - 1, first.claim.keys))  # another batch's keys: not in order
    assert not p._repeats_applied(second)
    p._applied.append((first.seq, first.claim.keys))
    assert p._repeats_applied(second)


def test_a_resend_of_a_batch_several_back_needs_every_batch_between_applied() -> None:
    p = _projector()
    visits = _visits(4)
    first = _prepare(p, visits[:2], 0)
    middle = _prepare(p, [visits[2]], 2)
    last = _prepare(p, [visits[3], visits[0]], 3)  # v-0 of two batches back
    assert last.again and last.again_from == first.seq

    _applied(p, first)
    assert not p._repeats_applied(last)  # the middle batch was not applied
    _applied(p, middle)
    assert p._repeats_applied(last)


class _Consumer:
    def seek(self, tp: TopicPartition, offset: int) -> None:
        pass


def test_after_a_rewind_the_batches_fetched_again_are_not_repeats_of_the_dropped_ones() -> None:
    p = _projector()
    p.bind(_Consumer())
    visits = _visits(3)
    _prepare(p, visits, 0)  # prefetched, then dropped: its batch failed

    p.rewind()
    again = _prepare(p, visits, 0)

    assert len(again.unique) == 3
    assert not again.again


def test_an_event_reported_under_a_new_id_is_not_a_repeat() -> None:
    p = _projector()
    event = _visits(1)[0]
    _prepare(p, [event], 0)
    renamed = f.wrap(event.data, event.time, id=uuid.uuid4())

    assert len(_prepare(p, [renamed], 1).unique) == 1


def test_a_batch_cut_by_a_rebalance_takes_the_place_of_the_batch_it_was_cut_from() -> None:
    """Prepared again for the partitions kept (Projector._usable), its events are not repeats
    of the batch it replaces (never applied); it keeps that batch's number, so the repeats the
    batches after it left out are decided against what it applied."""
    p = _projector()
    p._next[TP] = 0  # owned, stored offset 0; the supplies' partition went elsewhere
    visits = _visits(4)
    given = f.dispensed(BASE, {SupplyItem.NEEDLES: 5})
    supplies = TopicPartition(given.topic, 0)
    records = [f.record(e, i) for i, e in enumerate(visits[:3])]
    prefetched = p._prepare({TP: records, supplies: [f.record(given)]})
    after = _prepare(p, [visits[3], visits[0]], 3)  # prepared before the rebalance

    cut = p._usable(prefetched)

    assert cut is not None and cut.by_tp == {TP: records}
    assert cut.seq == prefetched.seq
    assert cut.again == []
    assert len(cut.unique) == 3
    _applied(p, cut)
    assert p._repeats_applied(after)
