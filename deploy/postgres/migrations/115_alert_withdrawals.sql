-- Issue 13: a void withdraws drug-alert evidence (services/incident/alerting.py, "Corrections").
-- Nothing here identifies a person: event ids of reports, facility sources, times.

-- Every void the drug alert worker consumed (dcr.corrections): a report arriving after its void
-- is not counted, and a restarted worker (or a new leader) knows the voids it already applied.
-- Stored in the transaction that deletes the voided overdose from alert_overdoses and withdraws
-- the alerts it took the basis from. Pruned with the overdoses (services/incident/alert_store.py).
CREATE TABLE IF NOT EXISTS alert_voids (
    source      text        NOT NULL,              -- the voiding (and voided) room's source
    target_id   uuid        NOT NULL,              -- the voided report's CloudEvents id
    void_id     uuid        NOT NULL,              -- the void's CloudEvents id
    voided_at   timestamptz NOT NULL,              -- the void's event time
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, target_id)
);
CREATE INDEX IF NOT EXISTS alert_voids_voided_at ON alert_voids (voided_at);

-- The incident service's lifecycle: withdrawn once (dk.dcr.alert.withdrawn in alert_outbox).
ALTER TABLE alert_episodes ADD COLUMN IF NOT EXISTS withdrawn_at timestamptz;

-- The projection's read model: state 'withdrawn' wins over open/acknowledged/resolved.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS withdrawn_at timestamptz;
