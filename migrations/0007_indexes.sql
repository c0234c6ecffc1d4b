-- Indexes for the two `ON DELETE CASCADE` columns of 0005 that had none: deleting an account
-- looked up its rows there by scanning the whole table (every direct message, every friendship)
-- inside the write transaction, on SQLite and PostgreSQL (MySQL makes such an index itself).
CREATE INDEX chat_direct_messages_hi ON chat_direct_messages (user_hi);
CREATE INDEX chat_friends_friend ON chat_friends (friend_id);
-- Usernames are unique whatever their case, as they are looked up (`LOWER(username)`): the
-- check before an insert raced with another registration of the same name in another case, and
-- two accounts came out. MySQL/MariaDB compare with the column's collation (case-insensitive by
-- default) and have no expression indexes. An account a case-twin shadowed (logins found the
-- older one) is renamed `<name>-<id>` first.
-- only: sqlite postgres
UPDATE accounts SET username = username || '-' || CAST(id AS TEXT)
WHERE username IS NOT NULL AND id NOT IN
    (SELECT MIN(id) FROM accounts WHERE username IS NOT NULL GROUP BY LOWER(username));
-- only: sqlite postgres
CREATE UNIQUE INDEX accounts_username_lower ON accounts (LOWER(username));
