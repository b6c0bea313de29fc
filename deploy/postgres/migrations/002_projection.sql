-- Read models of the projection service (services/projection) and its bookkeeping.
--
-- Invariants (see services/projection/domain.py and store.py):
--  * every change to these tables is made in the same transaction that advances
--    projection_offsets for the records it came from, so the tables always equal the result of
--    applying a prefix of each partition's log, exactly once;
--  * projection_events holds the CloudEvents (source, id) of every applied event: an event seen
--    again (ingest retry, replay) changes nothing;
--  * every change is order-independent across batches (sums, greatest/least, first-wins upserts,
--    or a recompute from the visits facts), so a rebuild with other batch boundaries yields
--    identical rows;
--  * days are calendar days in the city's time zone, derived from the event's `time`.
--  No clear client code is stored: visits hold the keyed pseudonym only (needed for exact
--  unique-client counts).

-- Consumer positions, per consumer group: the next offset to apply for each partition.
CREATE TABLE IF NOT EXISTS projection_offsets (
    consumer_group   text        NOT NULL,
    topic            text        NOT NULL,   -- physical topic name (with any prefix)
    partition        integer     NOT NULL,
    next_offset      bigint      NOT NULL DEFAULT 0,
    -- Kafka timestamp of the last applied record (freshness: data complete until)
    last_record_time timestamptz,
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Deduplication: one row per applied event.
CREATE TABLE IF NOT EXISTS projection_events (
    source text        NOT NULL,
    id     uuid        NOT NULL,
    type   text        NOT NULL,
    time   timestamptz NOT NULL,
    PRIMARY KEY (source, id)
);

-- District per day. Visit-derived columns (visits .. visit_seconds_total) are recomputed from
-- `visits` for every (district, day) a batch touches; the other columns are sums of deltas.
CREATE TABLE IF NOT EXISTS district_daily (
    district              text    NOT NULL,
    day                   date    NOT NULL,
    visits                integer NOT NULL DEFAULT 0,
    unique_clients        integer NOT NULL DEFAULT 0,
    new_clients           integer NOT NULL DEFAULT 0,
    assisted_injections   integer NOT NULL DEFAULT 0,
    visits_completed      integer NOT NULL DEFAULT 0,
    visit_minutes_median  numeric,
    visit_minutes_mean    numeric,
    visit_seconds_total   numeric NOT NULL DEFAULT 0,
    refusals              integer NOT NULL DEFAULT 0,
    referrals             integer NOT NULL DEFAULT 0,
    services              integer NOT NULL DEFAULT 0,
    supplies_dispensed    bigint  NOT NULL DEFAULT 0,
    sharps_returned_count bigint  NOT NULL DEFAULT 0,
    sharps_returned_kg    numeric NOT NULL DEFAULT 0,
    incidents             integer NOT NULL DEFAULT 0,
    overdoses             integer NOT NULL DEFAULT 0,
    life_threatening      integer NOT NULL DEFAULT 0,
    naloxone_doses        integer NOT NULL DEFAULT 0,
    ambulance_calls       integer NOT NULL DEFAULT 0,
    hospital_transfers    integer NOT NULL DEFAULT 0,
    deaths                integer NOT NULL DEFAULT 0,
    drug_checks           integer NOT NULL DEFAULT 0,
    drug_checks_unexpected integer NOT NULL DEFAULT 0,
    street_needles_count  bigint  NOT NULL DEFAULT 0,
    street_needles_kg     numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (district, day)
);
CREATE INDEX IF NOT EXISTS district_daily_day ON district_daily (day);

-- Keyed counts per district and day: dimension in (route, substance, refusal_reason, referral,
-- service, supply_item, incident_kind, incident_outcome). route/substance are recomputed from
-- `visits`; the others are sums. Only positive counts have a row.
CREATE TABLE IF NOT EXISTS district_daily_breakdown (
    district  text   NOT NULL,
    day       date   NOT NULL,
    dimension text   NOT NULL,
    key       text   NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (district, day, dimension, key)
);
CREATE INDEX IF NOT EXISTS district_daily_breakdown_day ON district_daily_breakdown (day);

-- Facility per day (visits recomputed from `visits`, the rest sums).
CREATE TABLE IF NOT EXISTS facility_daily (
    facility  text    NOT NULL,
    day       date    NOT NULL,
    visits    integer NOT NULL DEFAULT 0,
    refusals  integer NOT NULL DEFAULT 0,
    incidents integer NOT NULL DEFAULT 0,
    overdoses integer NOT NULL DEFAULT 0,
    PRIMARY KEY (facility, day)
);

-- Latest event time seen per facility (greatest, so order-independent).
CREATE TABLE IF NOT EXISTS facility_state (
    facility        text        PRIMARY KEY,
    last_event_time timestamptz NOT NULL
);

-- Visit facts, upserted from either side (an end may arrive before its start).
-- district/day/start fields are NULL until the start is known; day = local day of the start.
CREATE TABLE IF NOT EXISTS visits (
    facility           text        NOT NULL,
    visit_id           text        NOT NULL,
    district           text        NOT NULL,
    day                date,
    start_time         timestamptz,
    end_time           timestamptz,
    client_pseudonym   text,
    route              text,
    substances         text[],
    assisted_injection boolean,
    first_visit        boolean,
    PRIMARY KEY (facility, visit_id)
);
CREATE INDEX IF NOT EXISTS visits_district_day ON visits (district, day);
CREATE INDEX IF NOT EXISTS visits_day ON visits (day);
CREATE INDEX IF NOT EXISTS visits_open ON visits (facility, start_time)
    WHERE end_time IS NULL AND start_time IS NOT NULL;

-- Stock: every delivery (+) and dispensing (-) per item; the latest count per item.
-- On hand = latest count + sum of movements strictly after the count's time.
CREATE TABLE IF NOT EXISTS stock_movements (
    source   text        NOT NULL,
    id       uuid        NOT NULL,
    item     text        NOT NULL,
    facility text        NOT NULL,
    at       timestamptz NOT NULL,
    delta    bigint      NOT NULL,
    PRIMARY KEY (source, id, item)
);
CREATE INDEX IF NOT EXISTS stock_movements_facility_item_at ON stock_movements (facility, item, at);

CREATE TABLE IF NOT EXISTS stock_counts (
    facility   text        NOT NULL,
    item       text        NOT NULL,
    counted_at timestamptz NOT NULL,
    quantity   bigint      NOT NULL,
    PRIMARY KEY (facility, item)
);

-- Drug alerts (one per episode; the first one applied wins).
CREATE TABLE IF NOT EXISTS alerts (
    alert_id            text        PRIMARY KEY,
    episode             text        NOT NULL UNIQUE,
    district            text        NOT NULL,
    raised_at           timestamptz NOT NULL,
    reason              text        NOT NULL,
    substance           text,
    facility_id         text,
    overdoses_in_window integer,
    window_start        timestamptz,
    window_end          timestamptz,
    state               text        NOT NULL DEFAULT 'open'
);
CREATE INDEX IF NOT EXISTS alerts_raised_at ON alerts (raised_at DESC);
