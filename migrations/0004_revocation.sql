-- The global CORS list gets a revision, bumped in the transaction of every change to it, so that
-- a node's copy of the list only moves forward (as `apps_revision` does for apps).
INSERT INTO switchboard_meta (name, value) VALUES ('cors_revision', 0);
