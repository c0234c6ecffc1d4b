-- Accounts shared by every surface (dashboard, Notif, Push-Alt, Hestia). Integer ids made by
-- the application from a counter, so the DDL stays portable.
INSERT INTO switchboard_meta (name, value) VALUES ('account_id', 0);
CREATE TABLE accounts (
    id BIGINT NOT NULL PRIMARY KEY,
    username VARCHAR(64) NULL UNIQUE,
    email VARCHAR(255) NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    is_admin BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX apps_owner ON apps (owner_id);
