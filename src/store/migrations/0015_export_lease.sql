-- Active and standby hosts on one database (README, "Two hosts, one database"): the host that
-- holds this lease exports; the others import and plan only. `wanted_by`: a host an
-- administrator promoted, handed the lease by the holder at its next renewal. `stood_down`: a
-- host an administrator stepped down, which takes no lapsed lease until it is promoted.
CREATE TABLE export_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT,
    expires_at  INTEGER NOT NULL DEFAULT 0,
    wanted_by   TEXT,
    stood_down  TEXT
);
-- Which host ran each run (NULL: runs from before, or a store only one host uses).
ALTER TABLE runs ADD COLUMN host TEXT;
