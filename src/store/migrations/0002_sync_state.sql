-- The sync state: what the directory holds in scope (the connector space), what dirsync made in
-- the cloud (links), and export errors that persist from run to run.

-- Every in-scope user and group as last imported from AD. `state` says what is left to do:
-- 'pending' (changed since its last successful export, or failed), 'synced', or 'gone' (deleted in
-- AD or moved out of scope; the cloud object is still to delete). `object` is JSON:
-- {"attributes": {name: [values]}, "object_sid": "<base64>"|null, "problems": [...]}.
CREATE TABLE directory_objects (
    anchor      TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('user', 'group')),
    dn          TEXT    NOT NULL,
    object      TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'synced', 'gone'))
);
CREATE INDEX directory_objects_by_state ON directory_objects (state);

-- Which DNs an object points at (group members, a user's manager), so that an object exported
-- late sends the groups and reports that name it through the next run.
CREATE TABLE directory_references (
    source      TEXT    NOT NULL REFERENCES directory_objects (anchor) ON DELETE CASCADE,
    target_dn   TEXT    NOT NULL,
    PRIMARY KEY (source, target_dn)
) WITHOUT ROWID;
CREATE INDEX directory_references_by_target ON directory_references (target_dn);

-- The join: an AD object and the cloud object dirsync manages for it, with what was last
-- exported. `exported` is a JSON object of Graph properties, `members` a JSON array of member
-- anchors, `manager` the manager's anchor.
CREATE TABLE links (
    anchor      TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('user', 'group')),
    dn          TEXT    NOT NULL,
    cloud_id    TEXT    NOT NULL UNIQUE,
    exported    TEXT    NOT NULL DEFAULT '{}',
    members     TEXT    NOT NULL DEFAULT '[]',
    manager     TEXT
);

-- An object's export error as it persists across runs (miisclient's "first occurred" and
-- "retry count"). Cleared when the object exports cleanly.
CREATE TABLE object_errors (
    anchor             TEXT    PRIMARY KEY,
    error_type         TEXT    NOT NULL,
    first_occurred_at  INTEGER NOT NULL,
    retry_count        INTEGER NOT NULL DEFAULT 0
);

-- Remarks on objects that were exported anyway (an unverified UPN suffix replaced, say).
CREATE TABLE run_warnings (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    dn          TEXT    NOT NULL,
    anchor      TEXT    NOT NULL,
    attribute   TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    message     TEXT    NOT NULL
);
CREATE INDEX run_warnings_by_run ON run_warnings (run_id);
