-- The dashboard (issue 7): how often Graph throttled a run, and which process runs the schedule.

ALTER TABLE runs ADD COLUMN throttled INTEGER NOT NULL DEFAULT 0;

-- One row at most: the process that runs the scheduled cycles, 'service' (`dirsync service`) or
-- 'window' (the open dashboard), renewed while it lives. A lease not renewed in time has expired:
-- its process died, and another may take over. The run lock still keeps runs from overlapping.
CREATE TABLE scheduler_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT    NOT NULL CHECK (holder IN ('service', 'window')),
    pid         INTEGER NOT NULL,
    renewed_at  INTEGER NOT NULL
);
