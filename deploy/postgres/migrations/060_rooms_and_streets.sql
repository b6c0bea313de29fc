-- Per-room daily figures and street collections per area (issue 15; services/projection/rooms.py).
--
-- Invariants (as for 002_projection.sql):
--  * written in the same transaction that advances projection_offsets, from events applied once
--    (projection_events), so the tables equal a prefix of the event log applied exactly once;
--  * every change is a sum of deltas, so any batching (live or rebuild) gives identical rows;
--  * days are calendar days in the city's time zone, from the event's `time`.
--  Visit figures per room (visits, distinct people, new people) are not stored here: they are
--  counted from the `visits` facts over any period, so unique people are exact over the period
--  (not a sum of daily uniques). Nothing here identifies a person.

-- A room's day: one row per (measure, key). key is '' for a plain count; for a measure with a
-- vocabulary (referral kind, service, supply item, incident kind/outcome, refusal reason,
-- unexpected substance) one row per key and the measure's total is the sum of its keys.
-- Only non-zero amounts have a row.
CREATE TABLE IF NOT EXISTS room_daily (
    facility text    NOT NULL,
    day      date    NOT NULL,
    measure  text    NOT NULL,
    key      text    NOT NULL DEFAULT '',
    amount   numeric NOT NULL,
    PRIMARY KEY (facility, day, measure, key)
);
CREATE INDEX IF NOT EXISTS room_daily_day ON room_daily (day);

-- Street needle collections reported by sanitation teams, per district, area and day.
CREATE TABLE IF NOT EXISTS street_collections_daily (
    district text    NOT NULL,
    area     text    NOT NULL,
    day      date    NOT NULL,
    reports  integer NOT NULL DEFAULT 0,
    needles  bigint  NOT NULL DEFAULT 0,
    kg       numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (district, area, day)
);
CREATE INDEX IF NOT EXISTS street_collections_daily_day ON street_collections_daily (day);
