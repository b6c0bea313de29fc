-- Issue 18: the visit figures a catch-up has yet to recompute. A large batch of a consumer that is
-- behind (a catch-up, a rebuild) records the (district, day, facility) keys whose visit-derived
-- figures it changed here, in its own transaction, instead of recomputing them from `visits`
-- at once: the next batches of a catch-up touch the same days again (a 1M-event catch-up
-- recomputed each day ~4.6 times). The projection recomputes every pending key, and deletes it
-- here in the same transaction, as soon as it has caught up or a key has waited a few seconds
-- (services/projection/consumer.py, FIGURES_MAX_DELAY_S); retention does before it seals days.
-- Empty whenever every projection instance has caught up.
CREATE TABLE IF NOT EXISTS visit_figures_pending (
    district text COLLATE "C" NOT NULL,
    day      date NOT NULL,
    facility text COLLATE "C" NOT NULL,
    PRIMARY KEY (district, day, facility)
);
