"""A run's first fetches bring fewer records, doubling up to the largest batch."""

from __future__ import annotations

from services.projection.consumer import RAMP_SHARE, FetchRamp


def test_the_first_fetch_brings_a_share_and_each_next_twice_as_many_up_to_the_largest() -> None:
    ramp = FetchRamp(50_000)
    sizes = [ramp.take() for _ in range(8)]
    assert sizes[0] == 50_000 // RAMP_SHARE
    assert sizes[:6] == [3_125, 6_250, 12_500, 25_000, 50_000, 50_000]
    assert sizes[-1] == 50_000


def test_a_tiny_largest_batch_still_fetches_at_least_one_record() -> None:
    ramp = FetchRamp(1)
    assert [ramp.take() for _ in range(3)] == [1, 1, 1]
