-- SQLite's 0016_scheduler_lease_per_host.sql, for PostgreSQL: the schedule's lease, each host's
-- own.
DROP TABLE scheduler_lease;
CREATE TABLE scheduler_lease (
    host        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL CHECK (holder IN ('service', 'window')),
    pid         BIGINT  NOT NULL,
    renewed_at  BIGINT  NOT NULL
);
