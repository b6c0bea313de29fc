-- Read-only access for Grafana's PostgreSQL data source: the role dcr_reader.
--
-- The role and its password are made outside migrations (deploy/scripts/postgres.sh locally,
-- the grafana-db-reader job in docker-compose.yml, which also re-runs this file after creating
-- it). Without the role this migration does nothing.
--
-- Only the read models: not the ingest idempotency records, the dedup table or the incident
-- service's alert state. From `visits` only the columns the dashboards need: never
-- client_pseudonym or visit_id (column privileges; `SELECT *` on visits is refused).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'dcr_reader') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO dcr_reader', current_database());
        GRANT USAGE ON SCHEMA public TO dcr_reader;
        GRANT SELECT ON district_daily, district_daily_breakdown, facility_daily, facility_state,
                        stock_movements, stock_counts, alerts, projection_offsets
            TO dcr_reader;
        GRANT SELECT (facility, district, day, start_time, end_time, route, substances,
                      assisted_injection, first_visit)
            ON visits TO dcr_reader;
    END IF;
END
$$;
