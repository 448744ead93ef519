-- Users an administrator disabled in the cloud with `dirsync push --disable` while AD still has
-- them enabled (README, "Pushing one user now"). Every cycle keeps them disabled in the cloud
-- until AD disables the account too (AD governs again: the row goes), the object leaves AD or
-- the scope, or `dirsync push --enable` takes the hold back.
CREATE TABLE held_disabled (
    anchor   TEXT    PRIMARY KEY,
    held_at  INTEGER NOT NULL
);
