-- Push registrations (Hestia's FcmToken, and Web Push subscriptions it never had). One device
-- belongs to one account: registering a token or endpoint another account holds moves it. Web
-- Push endpoints are unique through their SHA-256 (an endpoint may be 2048 bytes, past MySQL's
-- index limit). Ids from counters, times in milliseconds, as 0001.
INSERT INTO switchboard_meta (name, value) VALUES ('fcm_token_id', 0);
INSERT INTO switchboard_meta (name, value) VALUES ('web_push_id', 0);
CREATE TABLE fcm_tokens (
    id BIGINT NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    token VARCHAR(512) NOT NULL,
    registered_at BIGINT NOT NULL,
    UNIQUE (account_id, token),
    FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
);
CREATE INDEX fcm_tokens_token ON fcm_tokens (token);
CREATE TABLE web_push_subscriptions (
    id BIGINT NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    endpoint_hash VARCHAR(64) NOT NULL UNIQUE,
    endpoint TEXT NOT NULL,
    p256dh VARCHAR(128) NOT NULL,
    auth VARCHAR(64) NOT NULL,
    registered_at BIGINT NOT NULL,
    FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
);
CREATE INDEX web_push_subscriptions_account ON web_push_subscriptions (account_id);
