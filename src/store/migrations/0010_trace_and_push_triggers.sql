-- Runs started by `dirsync trace --apply` and `dirsync push` (README, "Tracing one object", "Pushing
-- one user now") carry their own trigger. SQLite cannot change a CHECK constraint in place: the
-- table is rebuilt as its documentation says (https://www.sqlite.org/lang_altertable.html,
-- "Making Other Kinds Of Table Schema Changes"). Migrations run before foreign keys are turned on,
-- so dropping the old table touches no row that references it.
CREATE TABLE runs_new (
    id          INTEGER PRIMARY KEY,
    trigger     TEXT    NOT NULL CHECK (trigger IN ('wizard', 'schedule', 'manual', 'cli', 'trace', 'push')),
    mode        TEXT    NOT NULL CHECK (mode IN ('full', 'delta', 'preview', 'password')),
    status      TEXT    NOT NULL CHECK (status IN ('running', 'success', 'completed-with-errors',
                                                   'stopped-deletion-threshold', 'failed', 'cancelled')),
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    throttled   INTEGER NOT NULL DEFAULT 0,
    progress_done  INTEGER,
    progress_total INTEGER,
    progress_at    INTEGER
);
INSERT INTO runs_new (id, trigger, mode, status, started_at, ended_at, throttled, progress_done,
                      progress_total, progress_at)
    SELECT id, trigger, mode, status, started_at, ended_at, throttled, progress_done,
           progress_total, progress_at
    FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
CREATE INDEX runs_by_start ON runs (started_at DESC);
