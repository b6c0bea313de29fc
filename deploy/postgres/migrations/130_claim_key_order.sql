-- Issue 18: the claim's key leads with the event id (a uuid, compared as 16 bytes) instead of
-- the source (text, compared by the collation): every claim looks the key up twice (speculative
-- insertion), and nearly every event's source is shared by thousands of others. Same key, same
-- uniqueness; lookups by (source, id) use the index as before.
ALTER TABLE projection_events DROP CONSTRAINT projection_events_pkey;
ALTER TABLE projection_events ADD PRIMARY KEY (id, source);
