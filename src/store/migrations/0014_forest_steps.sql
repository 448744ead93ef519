-- Several forests (README, "Several forests"): each forest's directory import is a step of its
-- own, named by the forest it read (its domain's DNS name). NULL: a step of the whole run.
ALTER TABLE run_steps ADD COLUMN connector TEXT;
