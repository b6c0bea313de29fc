"""``DCR_PROJECTION_*``: how the projection consumes and what its read API shows."""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProjectionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DCR_PROJECTION_")

    #: Kafka consumer group. Instances in one group split the partitions; offsets are stored in
    #: PostgreSQL per group (``projection_offsets``), never committed to Kafka.
    group_id: str = Field(default="dcr-projection", min_length=1, max_length=200)
    #: Most records applied in one database transaction. Large batches matter when catching up
    #: (a rebuild, a backlog): per-batch work (round trips, visit-figure recomputes of the
    #: district-days and city days a batch touches) is shared by more records (``make bench``:
    #: 500 -> 5000 was about 1.6x; 20,000 recomputes a day of the 1M-event bench log ~2 times
    #: instead of ~7; 50,000 cut the district-day recompute's PostgreSQL time per event again,
    #: 10.5 -> 5.5-7.4 us, bench/results/issue18/s7/pgstat-*); live batches are small (whatever
    #: arrived since the last one).
    batch_max_records: int = Field(default=50_000, ge=1, le=100_000)
    #: A batch of at least this many records, fetched while more are waiting, leaves the
    #: visit figures it touches pending instead of recomputing them (a catch-up touches the same
    #: days batch after batch); live batches are far smaller.
    figures_defer_min_records: int = Field(default=5_000, ge=1)
    #: The longest visit figures stay pending while the projection is behind, in seconds; all
    #: are recomputed as soon as it has caught up.
    figures_max_delay_s: float = Field(default=5.0, ge=0, le=600)
    #: How long one poll waits for records, in milliseconds.
    poll_timeout_ms: int = Field(default=500, ge=10, le=60_000)
    #: Kafka group session timeout: how soon a dead instance's partitions move to another.
    session_timeout_ms: int = Field(default=10_000, ge=6_000, le=300_000)
    #: Wait before retrying a batch that failed (database or broker unavailable), seconds.
    retry_backoff_s: float = Field(default=1.0, gt=0, le=60)
    #: Public figures (port 8005) hide counts 1..threshold-1, and every hidden cell must stay
    #: uncertain over a range at least this wide (docs/public-figures.md).
    suppression_threshold: int = Field(default=5, ge=1, le=100)
    #: A public period is released this many days after its last day ...
    release_delay_days: int = Field(default=1, ge=1, le=60)
    #: ... at this hour, local time (the city's zone).
    release_hour: int = Field(default=6, ge=0, le=23)
    #: No public period starts before this day (older periods are never published, and
    #: deciding a period never reaches back further).
    public_since: date = date(2026, 1, 1)
    #: Largest date range (days) one read request may ask for.
    max_range_days: int = Field(default=366, ge=1, le=3660)
    #: A visit started longer ago than this and never ended no longer occupies a booth.
    stale_visit_hours: float = Field(default=12.0, gt=0)
    #: Plausibility (issue 13): a visit whose end is more than this after its start is closed by
    #: rule: it counts as a visit but is left out of the duration figures (median, mean,
    #: visits_completed), as is a visit whose end is before its start.
    max_visit_hours: float = Field(default=12.0, gt=0, le=24 * 7)

    @property
    def max_visit(self) -> timedelta:
        return timedelta(hours=self.max_visit_hours)
