-- Users disabled in the cloud when they left the scope, deleted after options.delete_after_days
-- unless they come back (README, "Deletes you can take back"): when they were disabled, in Unix
-- milliseconds; NULL for every other link.
ALTER TABLE links ADD COLUMN disabled_at INTEGER;
