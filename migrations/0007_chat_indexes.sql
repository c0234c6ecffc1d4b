-- Indexes for the two `ON DELETE CASCADE` columns of 0005 that had none: deleting an account
-- looked up its rows there by scanning the whole table (every direct message, every friendship)
-- inside the write transaction, on SQLite and PostgreSQL (MySQL makes such an index itself).
CREATE INDEX chat_direct_messages_hi ON chat_direct_messages (user_hi);
CREATE INDEX chat_friends_friend ON chat_friends (friend_id);
