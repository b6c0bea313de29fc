"""The benchmark log's duplicates: by default each repeats the record just before it (a retry);
with ``resend_after`` N, the record N before it (a resend after a delay, which can cross a
catch-up batch's boundary). The rest of the log is the same either way."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.env import bench_city
from bench.workload import EventLog

END = datetime(2026, 11, 1, tzinfo=UTC)


def _log(resend_after: int) -> tuple[EventLog, list[str]]:
    log = EventLog(bench_city(5), n=5_000, end=END, resend_after=resend_after)
    return log, [str(e.id) for e in log]


def test_a_duplicate_repeats_the_record_just_before_it_by_default() -> None:
    log, ids = _log(0)

    repeats = [i for i in range(1, len(ids)) if ids[i] in ids[:i]]
    assert len(repeats) == log.duplicates > 20
    assert all(ids[i] == ids[i - 1] for i in repeats)


def test_a_resend_repeats_the_record_n_before_it_and_the_rest_is_unchanged() -> None:
    _, plain = _log(0)
    log, ids = _log(300)

    repeats = [i for i in range(1, len(ids)) if ids[i] in ids[:i]]
    assert len(repeats) == log.duplicates > 20
    originals = [i for i, x in enumerate(ids) if i not in set(repeats)]
    assert [ids[i] for i in originals] == [x for i, x in enumerate(plain) if plain[i - 1] != x]
    late = [i for i in repeats if sum(1 for j in originals if j < i) >= 300]
    assert len(late) > 10
    for i in late:  # past the log's first 300 records: 300 originals from it to the resend
        first = ids.index(ids[i])
        assert sum(1 for j in originals if first <= j < i) == 300
