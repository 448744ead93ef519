-- Password hash sync (SPEC §7): which linked users' current AD password the cloud has been sent,
-- so that a user who becomes synced later (created, moved into scope, or re-created in the cloud)
-- gets a full read of their hash. No hash is ever stored here: only that one was sent, to which
-- cloud object, and when.
CREATE TABLE password_sync (
    anchor      TEXT    PRIMARY KEY,
    cloud_id    TEXT    NOT NULL,
    synced_at   INTEGER NOT NULL
);
