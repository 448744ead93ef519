-- The schedule's lease is each host's own (README, "Two hosts, one database"): hosts sharing a
-- PostgreSQL database each run their own schedule (the export lease decides which exports), and
-- a window and the service agree on one host as before. A lease is renewed within seconds, so
-- the one held when this runs is not kept: its holder takes it again.
DROP TABLE scheduler_lease;
CREATE TABLE scheduler_lease (
    host        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL CHECK (holder IN ('service', 'window')),
    pid         INTEGER NOT NULL,
    renewed_at  INTEGER NOT NULL
);
