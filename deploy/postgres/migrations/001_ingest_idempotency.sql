-- Idempotency records of the ingest services (intake, supply, incident).
-- One row per (principal, Idempotency-Key). `envelope` is the event as published (pseudonyms only,
-- never a clear client code); `fingerprint` is a keyed digest of the request body.
CREATE TABLE IF NOT EXISTS ingest_idempotency (
    scope       text        NOT NULL,
    key         text        NOT NULL,
    fingerprint text        NOT NULL,
    envelope    text        NOT NULL,
    response    jsonb       NOT NULL,
    published   boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS ingest_idempotency_created_at ON ingest_idempotency (created_at);
