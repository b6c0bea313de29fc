-- Issue 13: city-level visit figures per local day, recomputed from `visits` with the districts'
-- (services/projection/store.py, recompute_visit_figures) and kept after retention deletes the
-- visits of sealed days (a rebuild keeps sealed days' rows like the other aggregates).
-- unique_clients: distinct pseudonyms city-wide (with pseudonym_scope `city`, people seen in two
-- districts count once; with `facility`, equal to the sum of the districts').
-- visit_minutes_median: median of the plausible completed visits (medians do not add up).
CREATE TABLE IF NOT EXISTS city_daily (
    day                  date    PRIMARY KEY,
    unique_clients       integer NOT NULL,
    visit_minutes_median numeric
);
