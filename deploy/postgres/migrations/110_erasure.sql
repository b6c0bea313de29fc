-- Issue 13: the right to erasure (services/projection/erasure.py, docs/retention.md).
-- One row per erased pseudonym: sha256("<key id>:<pseudonym>"), never the pseudonym itself (nor
-- the code). The projection reads it to keep an erased person's pseudonym out of what it writes
-- again (the dedup records' copies of events; see store.claim_events), so a rebuild does not
-- bring it back. The erased person's visit rows are kept anonymised (client_pseudonym replaced
-- by a random token not stored anywhere, pseudonym_key = '-erased-'): the aggregates they were
-- counted in stay exactly as published, and a rebuild keeps these rows (store.reset).
CREATE TABLE IF NOT EXISTS erased_pseudonyms (
    digest    bytea       PRIMARY KEY,
    erased_at timestamptz NOT NULL
);
