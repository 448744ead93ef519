-- Hybrid write-back (SPEC §8): the mailbox attributes of each cloud user as the tenant last sent
-- them, and whether AD still has to be brought in line with them. Rows wait (pending) until the
-- user is linked and in scope; a write AD refused stays pending, with when it first failed.
CREATE TABLE cloud_mailboxes (
    cloud_id        TEXT    PRIMARY KEY,
    mailbox         TEXT    NOT NULL,  -- the tenant's item, JSON
    pending         INTEGER NOT NULL,
    first_failed_at INTEGER,
    retry_count     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX cloud_mailboxes_pending ON cloud_mailboxes (pending) WHERE pending = 1;
