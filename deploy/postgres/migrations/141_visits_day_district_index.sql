-- Issue 18: one index on visits (day, district) instead of two, (district, day) and (day).
-- Every visit row the projection writes updated four indexes; the recompute of a district-day
-- looks visits up by (district, day) and every other reader by a day or a range of days (the
-- city's days, a room's period, retention), which the leading day column serves as before.
-- One index insertion less per visit (EXPLAIN of a batch's visit upsert: ~13 buffer visits per
-- row, four index descents). tests/integration/projection/test_visit_indexes.py checks the
-- recompute's plan still uses it.
CREATE INDEX IF NOT EXISTS visits_day_district ON visits (day, district);
DROP INDEX IF EXISTS visits_district_day;
DROP INDEX IF EXISTS visits_day;
