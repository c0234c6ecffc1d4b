-- Push-Alt's data on Switchboard's schema: channel tokens, refresh tokens, the one-time setup
-- tokens, the global CORS list, name/value settings, an account's active flag and a workspace's
-- description. Tokens are stored as SHA-256 hex, never as issued. Portable as 0001: app-made
-- ids from counters, BIGINT booleans and millisecond timestamps.
INSERT INTO switchboard_meta (name, value) VALUES ('channel_token_id', 0);
INSERT INTO switchboard_meta (name, value) VALUES ('cors_origin_id', 0);
ALTER TABLE apps ADD COLUMN description VARCHAR(1024) NULL;
ALTER TABLE accounts ADD COLUMN active BIGINT NOT NULL DEFAULT 1;
CREATE TABLE channel_tokens (
    id BIGINT NOT NULL PRIMARY KEY,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    app_id VARCHAR(64) NOT NULL,
    channel VARCHAR(164) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    FOREIGN KEY (app_id) REFERENCES apps (id) ON DELETE CASCADE
);
CREATE INDEX channel_tokens_expiry ON channel_tokens (expires_at);
CREATE INDEX channel_tokens_app ON channel_tokens (app_id);
CREATE TABLE refresh_tokens (
    token_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_account ON refresh_tokens (account_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
CREATE TABLE setup_tokens (
    token_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    created_at BIGINT NOT NULL
);
CREATE TABLE cors_origins (
    id BIGINT NOT NULL PRIMARY KEY,
    origin VARCHAR(255) NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE settings (
    name VARCHAR(255) NOT NULL PRIMARY KEY,
    value VARCHAR(255) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
