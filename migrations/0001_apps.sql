-- Apps (tenants) and the counters the app cache polls. Portable across SQLite, PostgreSQL and
-- MySQL/MariaDB: VARCHAR keys, app-made ids, BIGINT booleans and millisecond timestamps.
CREATE TABLE switchboard_meta (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO switchboard_meta (name, value) VALUES ('apps_revision', 0);
INSERT INTO switchboard_meta (name, value) VALUES ('app_number', 0);
CREATE TABLE apps (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    number BIGINT NOT NULL UNIQUE,
    app_key VARCHAR(128) NOT NULL UNIQUE,
    secret VARCHAR(255) NOT NULL,
    name VARCHAR(255) NOT NULL,
    enabled BIGINT NOT NULL,
    owner_id BIGINT NULL,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
