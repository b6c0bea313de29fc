\timing on
DROP TABLE IF EXISTS t1, t2;
CREATE TABLE t1 (facility text, visit_id text, district text, client text, PRIMARY KEY (facility, visit_id));
CREATE INDEX ON t1 (district);
CREATE TABLE t2 (facility text COLLATE "C", visit_id text COLLATE "C", district text COLLATE "C", client text COLLATE "C", PRIMARY KEY (facility, visit_id));
CREATE INDEX ON t2 (district);
INSERT INTO t1 SELECT 'fac-' || (i % 50), md5(i::text), 'district-' || (i % 10), md5((i % 20000)::text) FROM generate_series(1, 600000) i;
INSERT INTO t2 SELECT 'fac-' || (i % 50), md5(i::text), 'district-' || (i % 10), md5((i % 20000)::text) FROM generate_series(1, 600000) i;
VACUUM ANALYZE t1; VACUUM ANALYZE t2;
INSERT INTO t1 SELECT 'fac-' || (i % 50), md5(i::text), 'district-' || (i % 10), md5((i % 20000)::text) FROM generate_series(600001, 640000) i ORDER BY 1,2;
INSERT INTO t2 SELECT 'fac-' || (i % 50), md5(i::text), 'district-' || (i % 10), md5((i % 20000)::text) FROM generate_series(600001, 640000) i ORDER BY 1,2;
INSERT INTO t1 SELECT 'fac-' || (i % 50), md5(i::text), 'district-' || (i % 10), md5((i % 20000)::text) FROM generate_series(640001, 680000) i ORDER BY 1,2;
INSERT INTO t2 SELECT 'fac-' || (i % 50), md5(i::text), 'district-' || (i % 10), md5((i % 20000)::text) FROM generate_series(640001, 680000) i ORDER BY 1,2;
SELECT district, count(DISTINCT client) FROM t1 GROUP BY 1;
SELECT district, count(DISTINCT client) FROM t2 GROUP BY 1;
SELECT district, count(DISTINCT client) FROM t1 GROUP BY 1;
SELECT district, count(DISTINCT client) FROM t2 GROUP BY 1;
DROP TABLE t1, t2;
