"""Projection metrics (module-level singletons; ``dcr_`` prefix; labels bounded: topic is the
catalogue name, partition is bounded by the topic's partition count, type by the catalogue)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMER_LAG = Gauge(
    "dcr_projection_consumer_lag_records",
    "Records in the log not yet applied (high watermark - next offset), per assigned partition",
    ["topic", "partition"],
)
LAST_APPLIED_AGE = Gauge(
    "dcr_projection_last_applied_event_age_seconds",
    "Seconds since the Kafka timestamp of the last applied record (grows while idle)",
)
BATCH_SIZE = Histogram(
    "dcr_projection_batch_size_records",
    "Records per applied batch",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
)
BATCH_LATENCY = Histogram(
    "dcr_projection_batch_apply_duration_seconds",
    "Time to apply one batch in one transaction (including dead-letter publishing)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_APPLIED = Counter(
    "dcr_projection_events_applied", "New events applied to the read models, by type", ["type"]
)
DUPLICATES = Counter(
    "dcr_projection_duplicate_events",
    "Events skipped because their (source, id) was already applied",
    ["topic"],
)
BATCH_FAILURES = Counter(
    "dcr_projection_batch_failures",
    "Batches rolled back (database or broker trouble); they are retried from stored offsets",
)
LOCK_SESSION_LOST = Counter(
    "dcr_projection_lock_session_lost",
    "Times the database session holding the shared rebuild lock was lost (e.g. PostgreSQL "
    "restarted): the projection stops applying until it holds the lock again",
)
FENCED = Counter(
    "dcr_projection_fenced_partitions",
    "Partitions skipped in a batch because another instance had moved their stored offset",
)
REBUILD_PROGRESS = Gauge(
    "dcr_projection_rebuild_progress_ratio", "Share of the log replayed by a running rebuild"
)
ASSIGNED_PARTITIONS = Gauge(
    "dcr_projection_assigned_partitions",
    "Event-topic partitions this instance owns (positioned at their stored offsets)",
)
OUTSIDE_OPENING_HOURS = Counter(
    "dcr_projection_visit_starts_while_closed",
    "Visit starts applied whose time is outside the facility's opening hours in city.yaml "
    "(accepted and counted like any other visit; this is the flag)",
    ["facility"],
)
ID_CONFLICTS = Counter(
    "dcr_projection_event_id_conflicts",
    "Records dead-lettered because their (source, id) was already applied for a different "
    "event (the ingest services answer 409 to that, so this should stay 0)",
)
CLAIM_FALLBACKS = Counter(
    "dcr_projection_claim_fallbacks",
    "Batches whose optimistic event-id claim (a plain insert) met an id claimed before (a "
    "replay, a retried batch, a duplicate in the previous batch) and was claimed again with "
    "ON CONFLICT; a high rate means the fast path rarely pays (store.claim_events)",
)
VISIT_FALLBACKS = Counter(
    "dcr_projection_visit_fallbacks",
    "Batches whose optimistic insert of visit starts (a plain insert of the starts no earlier "
    "batch left a row for) met a stored row and was upserted again with ON CONFLICT; a high "
    "rate means the fast path rarely pays (store._visits)",
)
STOCK_FALLBACKS = Counter(
    "dcr_projection_stock_fallbacks",
    "Batches whose optimistic insert of stock movements (a plain insert: every movement of a "
    "newly claimed event is new) met a stored movement and was inserted again with ON CONFLICT; "
    "should stay 0 (store.apply_changes)",
)
FIGURES_DEFERRED = Counter(
    "dcr_projection_figures_deferred_batches",
    "Batches of a consumer behind (a catch-up, a rebuild) that left their visit figures pending "
    "(visit_figures_pending) for a later batch to recompute; 0 in live operation",
)
