-- Issue 13: corrections. A facility voids one of its own reports (dk.dcr.report.voided).
-- projection_events keeps each applied event's Kafka value and schema version so that a void
-- arriving later can retract exactly what the event changed (services/projection/domain.py,
-- retraction). Rows written before this migration have NULL there: they cannot be retracted.
ALTER TABLE projection_events ADD COLUMN IF NOT EXISTS value bytea;
ALTER TABLE projection_events ADD COLUMN IF NOT EXISTS schema_version smallint;

-- One row per voided report: (source, target_id) = the target's CloudEvents (source, id); the
-- first void applied wins. A target arriving after its void is not applied.
CREATE TABLE IF NOT EXISTS projection_voids (
    source    text        NOT NULL,
    target_id uuid        NOT NULL,
    void_id   uuid        NOT NULL,
    reason    text        NOT NULL,
    time      timestamptz NOT NULL,
    PRIMARY KEY (source, target_id)
);
