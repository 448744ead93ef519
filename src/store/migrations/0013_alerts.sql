-- Alerts that fired and have not cleared (README, "Alerts"): one row per condition, so that each
-- alert is sent once when its condition begins, and "resolved" once when it ends, whichever
-- process (the service, a `dirsync sync`, a window) sees it first.
CREATE TABLE alerts_firing (
    condition  TEXT    PRIMARY KEY,
    since      INTEGER NOT NULL,
    summary    TEXT    NOT NULL
);
