-- Creates (or updates the password of) Grafana's read-only database role dcr_reader.
-- Run by the grafana-db-reader job of docker-compose.yml as the database owner:
--   psql -v ON_ERROR_STOP=1 -v reader_password="$DCR_READER_PASSWORD" -f reader.sql
-- followed by migration 020_grafana_reader.sql (the grants; it skipped them if the migrations
-- ran before this role existed).
SELECT 'CREATE ROLE dcr_reader LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dcr_reader')
\gexec
ALTER ROLE dcr_reader WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT
    PASSWORD :'reader_password';
