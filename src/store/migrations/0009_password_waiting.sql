-- Password sync through Microsoft Graph (README, "Password sync through Microsoft Graph") can send
-- only passwords Samba kept in clear or encrypted: a user whose password was set before that has
-- nothing to send until their next AD password change. Such a user is "waiting": read, nothing
-- sent, not read in full again (the change arrives through DirSync), counted on the dashboard.
ALTER TABLE password_sync ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;
