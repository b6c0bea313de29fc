\timing on
DROP TABLE IF EXISTS pe_a, pe_b;
CREATE TABLE pe_a (source text NOT NULL, id uuid NOT NULL, type text NOT NULL, time timestamptz NOT NULL, value bytea, schema_version smallint, PRIMARY KEY (id, source));
CREATE TABLE pe_b (LIKE pe_a INCLUDING ALL);
INSERT INTO pe_a SELECT '/facilities/halmtorv-' || (g%50), gen_random_uuid(), 'dk.dcr.visit.started', now(), convert_to(repeat('x', 350), 'UTF8'), 1 FROM generate_series(1,600000) g;
INSERT INTO pe_b SELECT * FROM pe_a;
CHECKPOINT;
CREATE TEMP TABLE batch AS SELECT '/facilities/halmtorv-' || (g%50) AS source, gen_random_uuid() AS id, 'dk.dcr.visit.started' AS type, now() AS time, convert_to(repeat('y', 350), 'UTF8') AS value, 1::smallint AS sv FROM generate_series(1,40000) g ORDER BY 2,1;
CREATE TEMP TABLE batch2 AS SELECT '/facilities/halmtorv-' || (g%50) AS source, gen_random_uuid() AS id, 'dk.dcr.visit.started' AS type, now() AS time, convert_to(repeat('y', 350), 'UTF8') AS value, 1::smallint AS sv FROM generate_series(1,40000) g ORDER BY 2,1;
BEGIN; INSERT INTO pe_a SELECT * FROM batch ON CONFLICT DO NOTHING; ROLLBACK;
BEGIN; INSERT INTO pe_b SELECT * FROM batch; ROLLBACK;
BEGIN; INSERT INTO pe_a SELECT * FROM batch ON CONFLICT DO NOTHING; ROLLBACK;
BEGIN; INSERT INTO pe_b SELECT * FROM batch; ROLLBACK;
BEGIN; INSERT INTO pe_a SELECT * FROM batch2 ON CONFLICT DO NOTHING; ROLLBACK;
BEGIN; INSERT INTO pe_b SELECT * FROM batch2; ROLLBACK;
BEGIN; INSERT INTO pe_b SELECT * FROM batch2 ON CONFLICT DO NOTHING; ROLLBACK;
BEGIN; INSERT INTO pe_a SELECT * FROM batch2; ROLLBACK;
DROP TABLE pe_a, pe_b;
