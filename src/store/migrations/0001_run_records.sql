-- Run records (SPEC §6) and the sync cursors. Times are Unix milliseconds, UTC.

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    trigger     TEXT    NOT NULL CHECK (trigger IN ('wizard', 'schedule', 'manual', 'cli')),
    mode        TEXT    NOT NULL CHECK (mode IN ('full', 'delta', 'preview', 'password')),
    status      TEXT    NOT NULL CHECK (status IN ('running', 'success', 'completed-with-errors',
                                                   'stopped-deletion-threshold', 'failed', 'cancelled')),
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER
);
CREATE INDEX runs_by_start ON runs (started_at DESC);

CREATE TABLE run_steps (
    run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    step        TEXT    NOT NULL CHECK (step IN ('directory-import', 'cloud-import', 'synchronization',
                                                 'cloud-export', 'write-back-export')),
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    adds        INTEGER NOT NULL DEFAULT 0,
    updates     INTEGER NOT NULL DEFAULT 0,
    renames     INTEGER NOT NULL DEFAULT 0,
    deletes     INTEGER NOT NULL DEFAULT 0,
    no_change   INTEGER NOT NULL DEFAULT 0,
    errors      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, position)
);

-- Every object change; attribute_changes is JSON: [{"name": …, "old": [...], "new": [...]}].
CREATE TABLE object_changes (
    id                 INTEGER PRIMARY KEY,
    run_id             INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step               TEXT    NOT NULL,
    dn                 TEXT    NOT NULL,
    anchor             TEXT    NOT NULL,
    object_type        TEXT    NOT NULL CHECK (object_type IN ('user', 'group')),
    cloud_id           TEXT,
    change_kind        TEXT    NOT NULL CHECK (change_kind IN ('add', 'update', 'rename', 'delete')),
    attribute_changes  TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX object_changes_by_run ON object_changes (run_id, step, change_kind);
CREATE INDEX object_changes_by_anchor ON object_changes (anchor);

CREATE TABLE run_errors (
    id                 INTEGER PRIMARY KEY,
    run_id             INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step               TEXT    NOT NULL,
    dn                 TEXT    NOT NULL,
    anchor             TEXT,
    object_type        TEXT,
    error_type         TEXT    NOT NULL,
    code               TEXT,
    server_message     TEXT    NOT NULL,
    hint               TEXT    NOT NULL,
    first_occurred_at  INTEGER NOT NULL,
    retry_count        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX run_errors_by_run ON run_errors (run_id);

-- Change-tracking positions (the DirSync cookie, Graph delta links), committed only after the
-- changes they cover are durable.
CREATE TABLE sync_cursors (
    name        TEXT    PRIMARY KEY,
    value       BLOB    NOT NULL,
    updated_at  INTEGER NOT NULL
);
