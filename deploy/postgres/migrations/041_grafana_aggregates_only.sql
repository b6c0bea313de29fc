-- Grafana's role dcr_reader reads aggregates only: no visit-level rows.
--
-- Migration 020 granted dcr_reader some columns of `visits` (facility, district, day,
-- start/end time, route, substances, assisted injection, first visit): one row per visit, to
-- the microsecond. Those grants are revoked here; the one dashboard panel that needed visits
-- (check-ins per hour of a facility) reads the view `facility_checkins_hourly` instead, a count
-- per facility and hour. The view runs with its owner's rights, so dcr_reader reads the counts
-- without any right on `visits`. `public_releases` (frozen unsuppressed figures) is not granted.
--
-- Like 020, a no-op without the role; the grafana-db-reader job of docker-compose.yml re-runs
-- 020 and then this file after creating the role.
CREATE OR REPLACE VIEW facility_checkins_hourly AS
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
        REVOKE ALL ON visits FROM dcr_reader;
        REVOKE SELECT (facility, district, day, start_time, end_time, route, substances,
                       assisted_injection, first_visit)
            ON visits FROM dcr_reader;
        GRANT SELECT ON facility_checkins_hourly TO dcr_reader;
    END IF;
END
$$;
