-- The front desk's booth board (services/frontdesk/board.py): one row per check-in made at a
-- room's desk. A booth is occupied while its row has no checked_out_at (at most one such row per
-- booth). visit_id is the intake's id, known once the check-in reached the platform.
-- No client code is stored here (the desk keeps codes in memory only, while the booth is in use).
CREATE TABLE IF NOT EXISTS frontdesk_board (
    facility       text        NOT NULL,
    checkin_key    text        NOT NULL,
    booth          integer     NOT NULL CHECK (booth BETWEEN 1 AND 200),
    checked_in_at  timestamptz NOT NULL,
    visit_id       text,
    checked_out_at timestamptz,
    PRIMARY KEY (facility, checkin_key)
);
CREATE UNIQUE INDEX IF NOT EXISTS frontdesk_board_occupied
    ON frontdesk_board (facility, booth) WHERE checked_out_at IS NULL;
