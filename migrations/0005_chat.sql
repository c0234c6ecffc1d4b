-- Hestia chat (SPEC §6): profile columns on accounts, friendships, friend requests, groups,
-- memberships and messages. Portable as 0001: app-made ids from counters, BIGINT booleans and
-- millisecond timestamps. Every row that names an account goes with it (ON DELETE CASCADE),
-- but a group's creator, which account deletion hands on first (chat::groups).
INSERT INTO switchboard_meta (name, value) VALUES ('chat_group_id', 0);
INSERT INTO switchboard_meta (name, value) VALUES ('chat_message_id', 0);
ALTER TABLE accounts ADD COLUMN chat_status VARCHAR(16) NOT NULL DEFAULT 'offline';
ALTER TABLE accounts ADD COLUMN bio VARCHAR(500) NULL;
ALTER TABLE accounts ADD COLUMN public_key TEXT NULL;
ALTER TABLE accounts ADD COLUMN picture_url VARCHAR(2048) NULL;
ALTER TABLE accounts ADD COLUMN banner_url VARCHAR(2048) NULL;
ALTER TABLE accounts ADD COLUMN last_active BIGINT NOT NULL DEFAULT 0;
-- Two rows per friendship, one from each side, so "my friends" is one index range.
CREATE TABLE chat_friends (
    user_id BIGINT NOT NULL,
    friend_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, friend_id),
    FOREIGN KEY (user_id) REFERENCES accounts (id) ON DELETE CASCADE,
    FOREIGN KEY (friend_id) REFERENCES accounts (id) ON DELETE CASCADE
);
CREATE TABLE chat_friend_requests (
    sender_id BIGINT NOT NULL,
    receiver_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (sender_id, receiver_id),
    FOREIGN KEY (sender_id) REFERENCES accounts (id) ON DELETE CASCADE,
    FOREIGN KEY (receiver_id) REFERENCES accounts (id) ON DELETE CASCADE
);
CREATE INDEX chat_friend_requests_receiver ON chat_friend_requests (receiver_id, created_at);
-- Names are unique per creator (SPEC §6), not globally as in Hestia.
CREATE TABLE chat_groups (
    id BIGINT NOT NULL PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    description VARCHAR(500) NULL,
    is_private BIGINT NOT NULL,
    created_by BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (created_by, name),
    FOREIGN KEY (created_by) REFERENCES accounts (id)
);
CREATE TABLE chat_members (
    group_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    role VARCHAR(8) NOT NULL,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id),
    FOREIGN KEY (group_id) REFERENCES chat_groups (id) ON DELETE CASCADE,
    FOREIGN KEY (user_id) REFERENCES accounts (id) ON DELETE CASCADE
);
CREATE INDEX chat_members_user ON chat_members (user_id);
-- Direct messages of a pair (user_lo < user_hi): a history page is a range of (pair, id).
-- Contents are text, or base64 AES-256-GCM ciphertext with its nonce when a key is set.
CREATE TABLE chat_direct_messages (
    id BIGINT NOT NULL PRIMARY KEY,
    user_lo BIGINT NOT NULL,
    user_hi BIGINT NOT NULL,
    sender_id BIGINT NOT NULL,
    content TEXT NOT NULL,
    nonce VARCHAR(32) NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (user_lo) REFERENCES accounts (id) ON DELETE CASCADE,
    FOREIGN KEY (user_hi) REFERENCES accounts (id) ON DELETE CASCADE
);
CREATE INDEX chat_direct_messages_pair ON chat_direct_messages (user_lo, user_hi, id);
CREATE TABLE chat_group_messages (
    id BIGINT NOT NULL PRIMARY KEY,
    group_id BIGINT NOT NULL,
    sender_id BIGINT NOT NULL,
    content TEXT NOT NULL,
    nonce VARCHAR(32) NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (group_id) REFERENCES chat_groups (id) ON DELETE CASCADE,
    FOREIGN KEY (sender_id) REFERENCES accounts (id) ON DELETE CASCADE
);
CREATE INDEX chat_group_messages_group ON chat_group_messages (group_id, id);
CREATE INDEX chat_group_messages_sender ON chat_group_messages (sender_id);
