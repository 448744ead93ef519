-- SQLite's 0015_export_lease.sql, for PostgreSQL: the export lease of active and standby hosts
-- (README, "Two hosts, one database"), and which host ran each run.
CREATE TABLE export_lease (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    holder      TEXT,
    expires_at  BIGINT NOT NULL DEFAULT 0,
    wanted_by   TEXT,
    stood_down  TEXT
);
ALTER TABLE runs ADD COLUMN host TEXT;
