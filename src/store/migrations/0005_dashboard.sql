-- The dashboard (issue 7): how often Graph throttled a run, how far a running run is, which
-- process runs the schedule, and what each directory import read.

ALTER TABLE runs ADD COLUMN throttled INTEGER NOT NULL DEFAULT 0;

-- How far a running run's current step is (objects done, of how many, when it was said), so a
-- window in another process can show it live.
ALTER TABLE runs ADD COLUMN progress_done INTEGER;
ALTER TABLE runs ADD COLUMN progress_total INTEGER;
ALTER TABLE runs ADD COLUMN progress_at INTEGER;

-- One row at most: the process that runs the scheduled cycles, 'service' (`dirsync service`) or
-- 'window' (the open dashboard), renewed while it lives. A lease not renewed in time has expired:
-- its process died, and another may take over. The run lock still keeps runs from overlapping.
CREATE TABLE scheduler_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT    NOT NULL CHECK (holder IN ('service', 'window')),
    pid         INTEGER NOT NULL,
    renewed_at  INTEGER NOT NULL
);

-- What the directory import read of each object, so the dashboard's import counters list their
-- objects: adds, updates and renames (with the AD attributes that changed, JSON as in
-- object_changes), and deletes. Apart from object_changes, which holds what dirsync changed.
CREATE TABLE import_changes (
    id                 INTEGER PRIMARY KEY,
    run_id             INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    dn                 TEXT    NOT NULL,
    anchor             TEXT    NOT NULL,
    object_type        TEXT    NOT NULL CHECK (object_type IN ('user', 'group')),
    change_kind        TEXT    NOT NULL CHECK (change_kind IN ('add', 'update', 'rename', 'delete')),
    attribute_changes  TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX import_changes_by_run ON import_changes (run_id);
CREATE INDEX import_changes_by_anchor ON import_changes (anchor);
