-- State of the incident service's drug alert worker (services/incident/alert_store.py).
-- Neither table holds anything about a person: event ids, districts, times, substances.

-- Recent overdoses per district: the alert rule's sliding window is rebuilt from these on start.
-- Written in the same transaction as the alerts an overdose raised.
CREATE TABLE IF NOT EXISTS alert_overdoses (
    event_id    uuid        PRIMARY KEY,           -- the incident event's ce_id: redelivery-safe
    district    text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alert_overdoses_occurred_at ON alert_overdoses (occurred_at);

-- Every alert raised, once per episode (the primary key), and an outbox: `published` turns true
-- once Kafka acknowledged the alert; unpublished rows are (re)published on start.
CREATE TABLE IF NOT EXISTS alert_episodes (
    episode     text        PRIMARY KEY,           -- e.g. overdose_cluster/vesterbro/<start>
    alert_id    uuid        NOT NULL UNIQUE,       -- uuid5(episode): the alert event's ce_id
    reason      text        NOT NULL,
    district    text        NOT NULL,
    substance   text,
    occurred_at timestamptz NOT NULL,              -- the alert event's ce_time
    record      text        NOT NULL,              -- the alert as its Kafka record (JSON)
    published   boolean     NOT NULL DEFAULT false,
    raised_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alert_episodes_unpublished ON alert_episodes (raised_at)
    WHERE NOT published;
CREATE INDEX IF NOT EXISTS alert_episodes_occurred_at ON alert_episodes (reason, occurred_at);
