-- Issue 11: the projection's alerts read model follows the lifecycle events
-- (dk.dcr.alert.acknowledged / resolved): state open -> acknowledged -> resolved (resolved wins
-- whatever the order), when and by which ops account, time to acknowledge, late-raised alerts.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS late boolean NOT NULL DEFAULT false;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS acknowledged_at timestamptz;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS acknowledged_by text;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS seconds_to_acknowledge double precision;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS resolved_at timestamptz;
