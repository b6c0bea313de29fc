-- Issue 18: the text columns of the read models the projection writes (every table of
-- services.projection.store.READ_MODEL_TABLES) are compared
-- byte by byte (COLLATE "C") instead of through the database's libc collation (C.UTF-8 on
-- Debian's cluster). PostgreSQL takes its memcmp fast path only for the collation named "C":
-- with C.UTF-8 every comparison of two different strings calls strcoll (and sorts get no
-- abbreviated keys), in every index descent of the upserts (visits' (facility, visit_id),
-- the (district, day) and (facility, day, measure, key) keys), every GROUP BY and ORDER BY of
-- the recomputes and every count(DISTINCT client_pseudonym). Measured in psql: 40,000 keyed
-- inserts into a 600,000-row table 7-9 % faster, count(DISTINCT) over 600,000 rows 18 %
-- faster; in the 1M-event catch-up PostgreSQL's executor time per event fell (bench/NOTES.md,
-- "text keys compared as bytes").
--
-- Order: byte order of UTF-8, which is code point order, as glibc's C.UTF-8 (the local
-- cluster's default) and Python's sorted() order; a cluster created with a language collation
-- (the postgres image's en_US.utf8, docker-compose.yml) now sorts these columns by code point
-- too (ids and vocabularies are lowercase ASCII). Equality was already byte equality. Only the
-- collation changes (binary-compatible): no table is rewritten, the indexes on these columns
-- are rebuilt. tests/integration/projection/test_text_collation.py checks every text column of
-- those tables is "C" (a later migration adding one cannot silently fall back to strcoll) and
-- that listings keep their order.
--
-- facility_checkins_hourly (041) reads visits' columns: dropped and created again as it was,
-- with its grant to Grafana's role when that role exists.
DROP VIEW IF EXISTS facility_checkins_hourly;

ALTER TABLE visits
    ALTER COLUMN facility TYPE text COLLATE "C",
    ALTER COLUMN visit_id TYPE text COLLATE "C",
    ALTER COLUMN district TYPE text COLLATE "C",
    ALTER COLUMN client_pseudonym TYPE text COLLATE "C",
    ALTER COLUMN pseudonym_key TYPE text COLLATE "C",
    ALTER COLUMN route TYPE text COLLATE "C",
    ALTER COLUMN substances TYPE text[] COLLATE "C";
ALTER TABLE district_daily
    ALTER COLUMN district TYPE text COLLATE "C";
ALTER TABLE district_daily_breakdown
    ALTER COLUMN district TYPE text COLLATE "C",
    ALTER COLUMN dimension TYPE text COLLATE "C",
    ALTER COLUMN key TYPE text COLLATE "C";
ALTER TABLE facility_daily
    ALTER COLUMN facility TYPE text COLLATE "C";
ALTER TABLE facility_state
    ALTER COLUMN facility TYPE text COLLATE "C";
ALTER TABLE room_daily
    ALTER COLUMN facility TYPE text COLLATE "C",
    ALTER COLUMN measure TYPE text COLLATE "C",
    ALTER COLUMN key TYPE text COLLATE "C";
ALTER TABLE street_collections_daily
    ALTER COLUMN area TYPE text COLLATE "C",
    ALTER COLUMN district TYPE text COLLATE "C";
ALTER TABLE stock_movements
    ALTER COLUMN source TYPE text COLLATE "C",
    ALTER COLUMN item TYPE text COLLATE "C",
    ALTER COLUMN facility TYPE text COLLATE "C";
ALTER TABLE stock_counts
    ALTER COLUMN facility TYPE text COLLATE "C",
    ALTER COLUMN item TYPE text COLLATE "C";
ALTER TABLE stock_count_reports
    ALTER COLUMN source TYPE text COLLATE "C",
    ALTER COLUMN facility TYPE text COLLATE "C",
    ALTER COLUMN item TYPE text COLLATE "C";
ALTER TABLE alerts
    ALTER COLUMN alert_id TYPE text COLLATE "C",
    ALTER COLUMN episode TYPE text COLLATE "C",
    ALTER COLUMN district TYPE text COLLATE "C",
    ALTER COLUMN reason TYPE text COLLATE "C",
    ALTER COLUMN substance TYPE text COLLATE "C",
    ALTER COLUMN facility_id TYPE text COLLATE "C",
    ALTER COLUMN acknowledged_by TYPE text COLLATE "C",
    ALTER COLUMN state TYPE text COLLATE "C";
ALTER TABLE projection_events
    ALTER COLUMN source TYPE text COLLATE "C",
    ALTER COLUMN type TYPE text COLLATE "C";
ALTER TABLE projection_voids
    ALTER COLUMN source TYPE text COLLATE "C",
    ALTER COLUMN reason TYPE text COLLATE "C";

CREATE VIEW facility_checkins_hourly AS
SELECT facility,
       district,
       date_trunc('hour', start_time) AS hour,
       count(*)::bigint                AS check_ins
FROM visits
WHERE start_time IS NOT NULL
GROUP BY facility, district, date_trunc('hour', start_time);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'dcr_reader') THEN
        GRANT SELECT ON facility_checkins_hourly TO dcr_reader;
    END IF;
END
$$;
