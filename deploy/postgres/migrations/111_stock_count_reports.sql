-- Issue 13: a void of a stock count restores the count before it (services/projection/store.py,
-- _retract_stock_counts). `stock_counts` keeps only the latest count per (facility, item);
-- this table keeps every count as reported (one row per item of a report), so the latest
-- remaining one can be found when the latest is voided. No person data; kept like stock_counts.
CREATE TABLE IF NOT EXISTS stock_count_reports (
    source     text        NOT NULL,
    id         uuid        NOT NULL,
    facility   text        NOT NULL,
    item       text        NOT NULL,
    counted_at timestamptz NOT NULL,
    quantity   bigint      NOT NULL,
    PRIMARY KEY (source, id, item)
);
CREATE INDEX IF NOT EXISTS stock_count_reports_item
    ON stock_count_reports (facility, item, counted_at DESC);
