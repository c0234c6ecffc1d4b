-- What keeps revocations and removals in force: the global CORS list gets a revision, bumped in
-- the transaction of every change to it, so that a node's copy of the list only moves forward
-- (as `apps_revision` does for apps); an account gets a time before which its tokens are void
-- (ms since the epoch; 0 = none revoked), set by a new password or a deactivation.
INSERT INTO switchboard_meta (name, value) VALUES ('cors_revision', 0);
ALTER TABLE accounts ADD COLUMN tokens_valid_after BIGINT NOT NULL DEFAULT 0;
