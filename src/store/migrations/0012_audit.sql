-- The audit trail (README, "The audit trail"): every change an administrator made to what dirsync
-- does — the configuration (setup, the wizard, the dashboard's settings, a renewed credential),
-- confirmed deletes, pushes. `changes` is JSON: [{"field": …, "old": …|null, "new": …|null}].
-- Secrets are never in it: the configuration holds none.
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    os_user   TEXT    NOT NULL,
    source    TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    detail    TEXT    NOT NULL DEFAULT '',
    changes   TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX audit_by_time ON audit (at DESC);
