-- Usernames are unique whatever their case, as they are looked up (`LOWER(username)`): the
-- check before an insert raced with another registration of the same name in another case, and
-- two accounts came out. MySQL/MariaDB compare with the column's collation (case-insensitive by
-- default) and have no expression indexes. An account a case-twin shadowed (logins found the
-- older one) is renamed `<name>-<id>` first. (A database migrated by a build whose 0007 carried
-- these two statements has the index already: hence IF NOT EXISTS.)
-- only: sqlite postgres
UPDATE accounts SET username = username || '-' || CAST(id AS TEXT)
WHERE username IS NOT NULL AND id NOT IN
    (SELECT MIN(id) FROM accounts WHERE username IS NOT NULL GROUP BY LOWER(username));
-- only: sqlite postgres
CREATE UNIQUE INDEX IF NOT EXISTS accounts_username_lower ON accounts (LOWER(username));
