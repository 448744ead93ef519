-- Creates sent to the cloud whose result is not yet kept (README, "Joining"). A row is written,
-- and committed, before the create is sent, and removed in the transaction that keeps the new
-- link (or when Graph refused the create). A row that outlives its run means the answer was lost
-- or the process died: the next run looks the object up (users by userPrincipalName, groups by
-- mailNickname and owner) before it creates anything, and deletes what it finds when the AD
-- object has gone meanwhile.
CREATE TABLE create_intents (
    anchor        TEXT    PRIMARY KEY,
    kind          TEXT    NOT NULL,
    dn            TEXT    NOT NULL,
    -- The userPrincipalName (users) or mailNickname (groups) the create sent.
    lookup        TEXT    NOT NULL,
    requested_at  INTEGER NOT NULL
);
