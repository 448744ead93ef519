-- Matches between an AD group and a cloud group dirsync did not make (README, "Joining"): proposed
-- by a run that found the cloud group with the AD group's mailNickname, confirmed by the
-- administrator (`dirsync match-group`, or the dashboard). Only a confirmed match is joined, and
-- only onto that very cloud group; the row goes when the link is kept.
CREATE TABLE group_matches (
    anchor        TEXT    PRIMARY KEY,
    cloud_id      TEXT    NOT NULL,
    proposed_at   INTEGER NOT NULL,
    confirmed_at  INTEGER
);
