-- Issue 13: retention (docs/retention.md, services/projection/retention.py).
-- One row: days before `sealed_before` (local days of the city) are sealed. Their aggregates
-- (district_daily, district_daily_breakdown, facility_daily) are final and kept; their
-- person-level rows (visits with pseudonyms) and dedup records are deleted; an event for a
-- sealed day is dead-lettered, live and in a rebuild alike, and a rebuild keeps the sealed
-- aggregates and replays only what Kafka still holds (the unsealed days).
CREATE TABLE IF NOT EXISTS retention_state (
    singleton     boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    sealed_before date,
    last_run      timestamptz
);
INSERT INTO retention_state (singleton) VALUES (true) ON CONFLICT DO NOTHING;
