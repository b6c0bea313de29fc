-- Issue 11: the drug alert worker identifies an overdose by its CloudEvents (source, id), never
-- by the bare id: two facilities may choose the same client event id and both overdoses count.
-- Rows written before this migration keep an empty source (they were unique by id already).
ALTER TABLE alert_overdoses ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT '';
ALTER TABLE alert_overdoses ALTER COLUMN source DROP DEFAULT;
ALTER TABLE alert_overdoses DROP CONSTRAINT IF EXISTS alert_overdoses_pkey;
ALTER TABLE alert_overdoses ADD PRIMARY KEY (source, event_id);
