-- Issue 13: no 202 without effect.
-- An event id chosen by a client is unique per principal across every route and ingest service:
-- `event_key` = '<principal>' || E'\x1f' || '<event_id>' (NULL when the body names no event_id).
-- The projection deduplicates by CloudEvents (source, id), so a second, different report under
-- one id would be silently lost; the ingest services answer 409 instead.
-- `scope` of new rows is '<principal>' || E'\x1f' || '<service><route>' (keys are per route).
ALTER TABLE ingest_idempotency ADD COLUMN IF NOT EXISTS event_key text;
CREATE UNIQUE INDEX IF NOT EXISTS ingest_idempotency_event_key
    ON ingest_idempotency (event_key) WHERE event_key IS NOT NULL;
