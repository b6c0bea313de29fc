-- Issue 11: drug alert lifecycle (acknowledged / resolved) and the notifier's delivery log.
-- Nothing here identifies a client: alert ids, districts, recipients (staff/team addresses from
-- deploy/contacts.yaml), message texts rendered from alerts (no client code or pseudonym).

-- Lifecycle of an alert, beside its raised record (services/incident/alert_store.py).
ALTER TABLE alert_episodes ADD COLUMN IF NOT EXISTS acknowledged_at timestamptz;
ALTER TABLE alert_episodes ADD COLUMN IF NOT EXISTS acknowledged_by text;
ALTER TABLE alert_episodes ADD COLUMN IF NOT EXISTS resolved_at timestamptz;
CREATE INDEX IF NOT EXISTS alert_episodes_unresolved ON alert_episodes (district)
    WHERE resolved_at IS NULL;

-- Outbox of the lifecycle events (dk.dcr.alert.acknowledged / resolved): stored in the same
-- transaction as the state change, published afterwards, republished on start if unacknowledged.
CREATE TABLE IF NOT EXISTS alert_outbox (
    event_id    uuid        PRIMARY KEY,           -- uuid5(alert id, kind): once per alert
    record      text        NOT NULL,              -- the event as its Kafka record (JSON)
    published   boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alert_outbox_unpublished ON alert_outbox (created_at)
    WHERE NOT published;

-- The notifier's delivery log: one row per alert event, recipient and channel, whatever the
-- number of redeliveries or notifier instances. A row is claimed with a lease (a crashed sender's
-- claim expires), retried with backoff, and ends 'delivered' or 'dead' (attempts exhausted).
CREATE TABLE IF NOT EXISTS alert_deliveries (
    event_id        uuid        NOT NULL,          -- the alert event's CloudEvents id
    recipient       text        NOT NULL,          -- contacts.yaml recipient id
    channel         text        NOT NULL CHECK (channel IN ('email', 'webhook')),
    delivery_id     uuid        NOT NULL UNIQUE,   -- uuid5: Message-ID / X-DCR-Delivery
    address         text        NOT NULL,          -- e-mail address or webhook URL
    message         jsonb       NOT NULL,          -- rendered once: subject, text, body
    event_time      timestamptz NOT NULL,          -- when the alert event happened
    state           text        NOT NULL DEFAULT 'pending'
                                CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    PRIMARY KEY (event_id, recipient, channel)
);
CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (next_attempt_at)
    WHERE state = 'pending';
