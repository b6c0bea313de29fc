-- Released public periods (services/projection/public.py): decided once, then frozen, so one
-- period always publishes the same table and later periods are audited against it.
--
-- `tables` holds the unsuppressed figures as frozen at release (internal: never granted to the
-- Grafana reader); `hidden` the [table, field] pairs published as null.
CREATE TABLE IF NOT EXISTS public_releases (
    kind         text        NOT NULL CHECK (kind IN ('day', 'week', 'month')),
    period_start date        NOT NULL,
    period_end   date        NOT NULL CHECK (period_end >= period_start),
    threshold    integer     NOT NULL CHECK (threshold >= 1),
    withheld     boolean     NOT NULL,
    tables       jsonb       NOT NULL,
    hidden       jsonb       NOT NULL,
    released_at  timestamptz NOT NULL,
    PRIMARY KEY (kind, period_start)
);
