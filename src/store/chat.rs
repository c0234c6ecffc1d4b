//! SQL for the Hestia chat (SPEC §6): profiles (columns of `accounts`), friendships and
//! requests, groups and memberships, direct and group messages. Rows come back as records; the
//! rules (who may do what, content, encryption) live in `crate::chat`.
//!
//! A history page is one index range: direct messages by `(user_lo, user_hi, id)`, group
//! messages by `(group_id, id)`, newest first with a `LIMIT`, then put in order.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Dialect, Error, Store, now_ms};

/// A chat user: an account with its chat profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatUserRecord {
    pub id: i64,
    /// The account's username; empty for an account made with an email only, whose name is
    /// never shown in its place (anyone could register an email account named like another user).
    pub username: String,
    pub created_at: i64,
    pub bio: Option<String>,
    pub status: String,
    pub public_key: Option<String>,
    pub picture_url: Option<String>,
    pub banner_url: Option<String>,
}

/// A profile field a user sets on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileField {
    Bio,
    PublicKey,
    Picture,
    Banner,
}

impl ProfileField {
    fn column(self) -> &'static str {
        match self {
            Self::Bio => "bio",
            Self::PublicKey => "public_key",
            Self::Picture => "picture_url",
            Self::Banner => "banner_url",
        }
    }
}

/// A user as a list entry: `{id, username}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRefRecord {
    pub id: i64,
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub is_private: bool,
    pub created_by: i64,
    pub created_at: i64,
}

/// A group as its member lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListRecord {
    pub group: GroupRecord,
    pub creator_username: String,
    pub member_count: i64,
    pub role: String,
    pub joined_at: i64,
}

/// What [`Store::delete_member_as`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// The remover is not (or no longer) an ADMIN of the group, or there is no such group.
    NotAdmin,
    /// The one to remove is not a member.
    NotMember,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub user_id: i64,
    pub username: String,
    pub role: String,
    pub joined_at: i64,
}

/// Where a message belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversation {
    /// A direct message to `recipient`.
    Direct {
        recipient: i64,
    },
    Group(i64),
}

/// A message to store; the store gives it its id.
#[derive(Debug, Clone)]
pub struct NewMessageRecord {
    pub sender_id: i64,
    pub conversation: Conversation,
    /// Text, or base64 ciphertext when `nonce` is set.
    pub content: String,
    pub nonce: Option<String>,
    pub created_at: i64,
}

/// A stored message with its sender's username (as it is now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub id: i64,
    pub sender_id: i64,
    pub username: String,
    pub conversation: Conversation,
    pub content: String,
    pub nonce: Option<String>,
    pub created_at: i64,
}

/// The counter message ids come from (direct and group messages share it).
const MESSAGE_ID: &str = "chat_message_id";
const GROUP_ID: &str = "chat_group_id";
/// Rows per multi-row INSERT: 7 parameters each stays far below every database's limit.
const ROWS_PER_INSERT: usize = 100;

const USER_COLUMNS: &str = "id, COALESCE(username, '') AS uname, created_at, bio, chat_status, public_key, \
                            picture_url, banner_url";

fn user_record(dialect: Dialect, row: &AnyRow) -> Result<ChatUserRecord, sqlx::Error> {
    Ok(ChatUserRecord {
        id: row.try_get("id")?,
        username: row.try_get("uname")?,
        created_at: row.try_get("created_at")?,
        bio: row.try_get("bio")?,
        status: row.try_get("chat_status")?,
        public_key: optional_text(dialect, row, "public_key")?,
        picture_url: row.try_get("picture_url")?,
        banner_url: row.try_get("banner_url")?,
    })
}

/// A nullable TEXT column (see [`Dialect::text`]).
fn optional_text(dialect: Dialect, row: &AnyRow, column: &str) -> Result<Option<String>, sqlx::Error> {
    match row.try_get::<Option<String>, _>(column) {
        Ok(v) => Ok(v),
        Err(e) if dialect == Dialect::MySql => {
            let bytes: Option<Vec<u8>> = row.try_get(column).map_err(|_| e)?;
            bytes
                .map(String::from_utf8)
                .transpose()
                .map_err(|err| sqlx::Error::ColumnDecode { index: column.into(), source: Box::new(err) })
        }
        Err(e) => Err(e),
    }
}

const GROUP_COLUMNS: &str = "g.id, g.name, g.description, g.is_private, g.created_by, g.created_at";

fn group_record(row: &AnyRow) -> Result<GroupRecord, sqlx::Error> {
    Ok(GroupRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        is_private: row.try_get::<i64, _>("is_private")? != 0,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

fn user_ref(row: &AnyRow) -> Result<UserRefRecord, sqlx::Error> {
    Ok(UserRefRecord { id: row.try_get("id")?, username: row.try_get("uname")? })
}

/// The pair key of a direct conversation: the smaller id first.
pub fn pair(a: i64, b: i64) -> (i64, i64) {
    (a.min(b), a.max(b))
}

impl Store {
    pub async fn chat_user(&self, id: i64) -> Result<ChatUserRecord, Error> {
        let q = format!("SELECT {USER_COLUMNS} FROM accounts WHERE id = $1");
        let row = sqlx::query(&self.dialect.sql(&q)).bind(id).fetch_optional(self.pool()).await?;
        row.as_ref().map(|r| user_record(self.dialect, r)).transpose()?.ok_or(Error::NotFound)
    }

    /// By username, compared case-insensitively as logins are.
    pub async fn chat_user_by_username(&self, username: &str) -> Result<ChatUserRecord, Error> {
        let q = format!("SELECT {USER_COLUMNS} FROM accounts WHERE LOWER(username) = LOWER($1)");
        let row = sqlx::query(&self.dialect.sql(&q)).bind(username).fetch_optional(self.pool()).await?;
        row.as_ref().map(|r| user_record(self.dialect, r)).transpose()?.ok_or(Error::NotFound)
    }

    /// Sets (or clears) one profile field; returns the value it replaced.
    pub async fn set_profile_field(
        &self,
        id: i64,
        field: ProfileField,
        value: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let column = field.column();
        let mut tx = self.begin_write().await?;
        let q = format!("SELECT {column} FROM accounts WHERE id = $1");
        let row = sqlx::query(&self.dialect.sql(&q)).bind(id).fetch_optional(&mut *tx).await?.ok_or(Error::NotFound)?;
        let old = optional_text(self.dialect, &row, column)?;
        let q = format!("UPDATE accounts SET {column} = $1, updated_at = $2 WHERE id = $3");
        sqlx::query(&self.dialect.sql(&q)).bind(value).bind(now_ms()).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(old)
    }

    /// [`Error::Conflict`] when another account has the name (compared case-insensitively).
    pub async fn set_username(&self, id: i64, username: &str) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        let taken =
            sqlx::query(&self.dialect.sql("SELECT id FROM accounts WHERE LOWER(username) = LOWER($1) AND id <> $2"))
                .bind(username)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if taken.is_some() {
            return Err(Error::Conflict("username".into()));
        }
        let done = sqlx::query(&self.dialect.sql("UPDATE accounts SET username = $1, updated_at = $2 WHERE id = $3"))
            .bind(username)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.on_write(e))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets the status; with `only_from`, only when it is that now. Marks the user active now.
    /// Whether a row changed.
    pub async fn set_chat_status(&self, id: i64, status: &str, only_from: Option<&str>) -> Result<bool, Error> {
        let done = match only_from {
            Some(from) => {
                sqlx::query(
                    &self.dialect.sql(
                        "UPDATE accounts SET chat_status = $1, last_active = $2 WHERE id = $3 AND chat_status = $4",
                    ),
                )
                .bind(status)
                .bind(now_ms())
                .bind(id)
                .bind(from)
                .execute(self.pool())
                .await?
            }
            None => {
                sqlx::query(&self.dialect.sql("UPDATE accounts SET chat_status = $1, last_active = $2 WHERE id = $3"))
                    .bind(status)
                    .bind(now_ms())
                    .bind(id)
                    .execute(self.pool())
                    .await?
            }
        };
        Ok(done.rows_affected() > 0)
    }

    // Friends.

    pub async fn are_friends(&self, a: i64, b: i64) -> Result<bool, Error> {
        let row =
            sqlx::query(&self.dialect.sql("SELECT 1 AS x FROM chat_friends WHERE user_id = $1 AND friend_id = $2"))
                .bind(a)
                .bind(b)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.is_some())
    }

    /// Whether `sender` has asked `receiver`.
    pub async fn friend_request_exists(&self, sender: i64, receiver: i64) -> Result<bool, Error> {
        let row = sqlx::query(
            &self.dialect.sql("SELECT 1 AS x FROM chat_friend_requests WHERE sender_id = $1 AND receiver_id = $2"),
        )
        .bind(sender)
        .bind(receiver)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// [`Error::Conflict`] when the request exists.
    pub async fn insert_friend_request(&self, sender: i64, receiver: i64) -> Result<(), Error> {
        sqlx::query(
            &self
                .dialect
                .sql("INSERT INTO chat_friend_requests (sender_id, receiver_id, created_at) VALUES ($1, $2, $3)"),
        )
        .bind(sender)
        .bind(receiver)
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map_err(|e| self.on_write(e))?;
        Ok(())
    }

    /// Deletes `sender`'s request to `receiver`; [`Error::NotFound`] when there is none.
    pub async fn delete_friend_request(&self, sender: i64, receiver: i64) -> Result<(), Error> {
        let done = sqlx::query(
            &self.dialect.sql("DELETE FROM chat_friend_requests WHERE sender_id = $1 AND receiver_id = $2"),
        )
        .bind(sender)
        .bind(receiver)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    /// Turns `sender`'s request to `receiver` into a friendship (both rows), in one
    /// transaction; [`Error::NotFound`] when there is no such request.
    pub async fn accept_friend_request(&self, sender: i64, receiver: i64) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            &self.dialect.sql("DELETE FROM chat_friend_requests WHERE sender_id = $1 AND receiver_id = $2"),
        )
        .bind(sender)
        .bind(receiver)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        // A crossed request (each asked the other) goes too.
        sqlx::query(&self.dialect.sql("DELETE FROM chat_friend_requests WHERE sender_id = $1 AND receiver_id = $2"))
            .bind(receiver)
            .bind(sender)
            .execute(&mut *tx)
            .await?;
        let now = now_ms();
        for (a, b) in [(sender, receiver), (receiver, sender)] {
            let exists =
                sqlx::query(&self.dialect.sql("SELECT 1 AS x FROM chat_friends WHERE user_id = $1 AND friend_id = $2"))
                    .bind(a)
                    .bind(b)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_none() {
                sqlx::query(
                    &self.dialect.sql("INSERT INTO chat_friends (user_id, friend_id, created_at) VALUES ($1, $2, $3)"),
                )
                .bind(a)
                .bind(b)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.on_write(e))?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends a friendship (both rows); [`Error::NotFound`] when there was none.
    pub async fn delete_friendship(&self, a: i64, b: i64) -> Result<(), Error> {
        let done = sqlx::query(&self.dialect.sql(
            "DELETE FROM chat_friends WHERE (user_id = $1 AND friend_id = $2) OR (user_id = $3 AND friend_id = $4)",
        ))
        .bind(a)
        .bind(b)
        .bind(b)
        .bind(a)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    /// `me`'s friends, by id.
    pub async fn friends(&self, me: i64) -> Result<Vec<UserRefRecord>, Error> {
        let q = "SELECT a.id, COALESCE(a.username, '') AS uname FROM chat_friends f \
                 JOIN accounts a ON a.id = f.friend_id WHERE f.user_id = $1 ORDER BY a.id";
        let rows = sqlx::query(&self.dialect.sql(q)).bind(me).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(user_ref).collect::<Result<_, _>>()?)
    }

    /// The senders of requests to `me`, oldest request first.
    pub async fn friend_requests_to(&self, me: i64) -> Result<Vec<UserRefRecord>, Error> {
        let q = "SELECT a.id, COALESCE(a.username, '') AS uname FROM chat_friend_requests r \
                 JOIN accounts a ON a.id = r.sender_id WHERE r.receiver_id = $1 ORDER BY r.created_at, a.id";
        let rows = sqlx::query(&self.dialect.sql(q)).bind(me).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(user_ref).collect::<Result<_, _>>()?)
    }

    /// The sender's username when `sender` and `recipient` are friends (what a direct message
    /// needs to know, in one round trip).
    pub async fn friend_sender_name(&self, sender: i64, recipient: i64) -> Result<Option<String>, Error> {
        let q = "SELECT COALESCE(a.username, '') AS uname FROM chat_friends f \
                 JOIN accounts a ON a.id = f.user_id WHERE f.user_id = $1 AND f.friend_id = $2";
        let row = sqlx::query(&self.dialect.sql(q)).bind(sender).bind(recipient).fetch_optional(self.pool()).await?;
        Ok(row.map(|r| r.try_get("uname")).transpose()?)
    }

    // Groups.

    /// Creates a group with `creator` as its ADMIN; [`Error::Conflict`] when the creator has a
    /// group of that name.
    pub async fn insert_group(
        &self,
        creator: i64,
        name: &str,
        description: Option<&str>,
        is_private: bool,
    ) -> Result<GroupRecord, Error> {
        let mut tx = self.begin_write().await?;
        let id = Store::next_id(&mut tx, self.dialect, GROUP_ID).await?;
        let now = now_ms();
        sqlx::query(&self.dialect.sql(
            "INSERT INTO chat_groups (id, name, description, is_private, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        ))
        .bind(id)
        .bind(name)
        .bind(description)
        .bind(i64::from(is_private))
        .bind(creator)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.on_write(e))?;
        insert_member_in(&mut tx, self.dialect, id, creator, "ADMIN", now).await?;
        tx.commit().await?;
        Ok(GroupRecord {
            id,
            name: name.to_owned(),
            description: description.map(str::to_owned),
            is_private,
            created_by: creator,
            created_at: now,
        })
    }

    pub async fn group(&self, id: i64) -> Result<GroupRecord, Error> {
        let q = format!("SELECT {GROUP_COLUMNS} FROM chat_groups g WHERE g.id = $1");
        let row = sqlx::query(&self.dialect.sql(&q)).bind(id).fetch_optional(self.pool()).await?;
        row.as_ref().map(group_record).transpose()?.ok_or(Error::NotFound)
    }

    /// Writes name, description and privacy; [`Error::Conflict`] on a name the creator uses.
    pub async fn update_group(&self, group: &GroupRecord) -> Result<(), Error> {
        let done = sqlx::query(
            &self.dialect.sql("UPDATE chat_groups SET name = $1, description = $2, is_private = $3 WHERE id = $4"),
        )
        .bind(&group.name)
        .bind(&group.description)
        .bind(i64::from(group.is_private))
        .bind(group.id)
        .execute(self.pool())
        .await
        .map_err(|e| self.on_write(e))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    /// The groups `me` is a member of, newest membership first.
    pub async fn groups_of(&self, me: i64) -> Result<Vec<GroupListRecord>, Error> {
        let q = format!(
            "SELECT {GROUP_COLUMNS}, m.role, m.joined_at, COALESCE(c.username, '') AS uname, \
             (SELECT COUNT(*) FROM chat_members x WHERE x.group_id = g.id) AS member_count \
             FROM chat_members m JOIN chat_groups g ON g.id = m.group_id JOIN accounts c ON c.id = g.created_by \
             WHERE m.user_id = $1 ORDER BY m.joined_at DESC, g.id DESC"
        );
        let rows = sqlx::query(&self.dialect.sql(&q)).bind(me).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                Ok(GroupListRecord {
                    group: group_record(row)?,
                    creator_username: row.try_get("uname")?,
                    member_count: row.try_get("member_count")?,
                    role: row.try_get("role")?,
                    joined_at: row.try_get("joined_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Error::from)
    }

    pub async fn group_ids_of(&self, me: i64) -> Result<Vec<i64>, Error> {
        let rows =
            sqlx::query(&self.dialect.sql("SELECT group_id FROM chat_members WHERE user_id = $1 ORDER BY group_id"))
                .bind(me)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.iter().map(|r| r.try_get("group_id")).collect::<Result<_, _>>()?)
    }

    /// `user`'s membership of `group`: its role and when it joined.
    pub async fn membership(&self, group: i64, user: i64) -> Result<Option<MemberRecord>, Error> {
        let q = "SELECT m.user_id, COALESCE(a.username, '') AS uname, m.role, m.joined_at FROM chat_members m \
                 JOIN accounts a ON a.id = m.user_id WHERE m.group_id = $1 AND m.user_id = $2";
        let row = sqlx::query(&self.dialect.sql(q)).bind(group).bind(user).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(member_record).transpose()?)
    }

    /// Members in the order they joined.
    pub async fn members(&self, group: i64) -> Result<Vec<MemberRecord>, Error> {
        let q = "SELECT m.user_id, COALESCE(a.username, '') AS uname, m.role, m.joined_at FROM chat_members m \
                 JOIN accounts a ON a.id = m.user_id WHERE m.group_id = $1 ORDER BY m.joined_at, m.user_id";
        let rows = sqlx::query(&self.dialect.sql(q)).bind(group).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(member_record).collect::<Result<_, _>>()?)
    }

    pub async fn group_message_count(&self, group: i64) -> Result<i64, Error> {
        let row = sqlx::query(&self.dialect.sql("SELECT COUNT(*) AS n FROM chat_group_messages WHERE group_id = $1"))
            .bind(group)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Adds a member; [`Error::Conflict`] when it is one already.
    pub async fn insert_member(&self, group: i64, user: i64, role: &str) -> Result<i64, Error> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        insert_member_in(&mut tx, self.dialect, group, user, role, now).await.map_err(|e| match e {
            Error::Database(e) => self.on_write(e),
            e => e,
        })?;
        tx.commit().await?;
        Ok(now)
    }

    /// Removes `user` from `group` if `admin` is one of its ADMINs when it happens. The group's
    /// row is held meanwhile, so two ADMINs removing each other at once do not both succeed and
    /// leave the group without one.
    pub async fn delete_member_as(&self, group: i64, admin: i64, user: i64) -> Result<Removal, Error> {
        let d = self.dialect;
        let mut tx = self.begin_write().await?;
        let q = format!("SELECT id FROM chat_groups WHERE id = $1{}", d.lock_rows());
        if sqlx::query(&d.sql(&q)).bind(group).fetch_optional(&mut *tx).await?.is_none() {
            return Ok(Removal::NotAdmin);
        }
        let row = sqlx::query(&d.sql("SELECT role FROM chat_members WHERE group_id = $1 AND user_id = $2"))
            .bind(group)
            .bind(admin)
            .fetch_optional(&mut *tx)
            .await?;
        match row.map(|row| d.text(&row, "role")).transpose()? {
            Some(role) if role == "ADMIN" => {}
            _ => return Ok(Removal::NotAdmin),
        }
        let done = sqlx::query(&d.sql("DELETE FROM chat_members WHERE group_id = $1 AND user_id = $2"))
            .bind(group)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(Removal::NotMember);
        }
        tx.commit().await?;
        Ok(Removal::Removed)
    }

    // Messages.

    /// Stores a batch of messages in one transaction and returns their ids, in order: the
    /// group-commit writer's one write. Ids are taken as a block from the counter.
    pub async fn insert_messages(&self, batch: &[NewMessageRecord]) -> Result<Vec<i64>, Error> {
        let n = i64::try_from(batch.len()).unwrap_or(i64::MAX);
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(&self.dialect.sql("UPDATE switchboard_meta SET value = value + $1 WHERE name = $2"))
            .bind(n)
            .bind(MESSAGE_ID)
            .execute(&mut *tx)
            .await?;
        let last = Store::counter_in(&mut tx, self.dialect, MESSAGE_ID).await?;
        let ids: Vec<i64> = (last - n + 1..=last).collect();
        let with_ids: Vec<(i64, &NewMessageRecord)> = ids.iter().copied().zip(batch).collect();
        let direct: Vec<_> =
            with_ids.iter().filter(|(_, m)| matches!(m.conversation, Conversation::Direct { .. })).collect();
        let group: Vec<_> = with_ids.iter().filter(|(_, m)| matches!(m.conversation, Conversation::Group(_))).collect();
        for chunk in direct.chunks(ROWS_PER_INSERT) {
            let q = self
                .dialect
                .sql(&multi_insert(
                    "chat_direct_messages (id, user_lo, user_hi, sender_id, content, nonce, created_at)",
                    7,
                    chunk.len(),
                ))
                .into_owned();
            let mut query = sqlx::query(&q);
            for (id, m) in chunk {
                let Conversation::Direct { recipient } = m.conversation else { continue };
                let (lo, hi) = pair(m.sender_id, recipient);
                query = query
                    .bind(*id)
                    .bind(lo)
                    .bind(hi)
                    .bind(m.sender_id)
                    .bind(m.content.clone())
                    .bind(m.nonce.clone())
                    .bind(m.created_at);
            }
            query.execute(&mut *tx).await?;
        }
        for chunk in group.chunks(ROWS_PER_INSERT) {
            let q = self
                .dialect
                .sql(&multi_insert(
                    "chat_group_messages (id, group_id, sender_id, content, nonce, created_at)",
                    6,
                    chunk.len(),
                ))
                .into_owned();
            let mut query = sqlx::query(&q);
            for (id, m) in chunk {
                let Conversation::Group(group_id) = m.conversation else { continue };
                query = query
                    .bind(*id)
                    .bind(group_id)
                    .bind(m.sender_id)
                    .bind(m.content.clone())
                    .bind(m.nonce.clone())
                    .bind(m.created_at);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Up to `limit` direct messages between `a` and `b` older than `before` (any with `None`),
    /// oldest first.
    pub async fn direct_history(
        &self,
        a: i64,
        b: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, Error> {
        let (lo, hi) = pair(a, b);
        let q = "SELECT m.id, m.sender_id, m.user_lo, m.user_hi, m.content, m.nonce, m.created_at, \
                 COALESCE(s.username, '') AS uname FROM chat_direct_messages m JOIN accounts s ON s.id = m.sender_id \
                 WHERE m.user_lo = $1 AND m.user_hi = $2 AND m.id < $3 ORDER BY m.id DESC LIMIT $4";
        let rows = sqlx::query(&self.dialect.sql(q))
            .bind(lo)
            .bind(hi)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        let mut out = rows
            .iter()
            .map(|row| {
                let sender: i64 = row.try_get("sender_id")?;
                let lo: i64 = row.try_get("user_lo")?;
                let hi: i64 = row.try_get("user_hi")?;
                message_record(
                    self.dialect,
                    row,
                    Conversation::Direct { recipient: if sender == lo { hi } else { lo } },
                )
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        out.reverse();
        Ok(out)
    }

    /// [`Store::direct_history`] for a group.
    pub async fn group_history(
        &self,
        group: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, Error> {
        let q = "SELECT m.id, m.sender_id, m.content, m.nonce, m.created_at, COALESCE(s.username, '') AS uname \
                 FROM chat_group_messages m JOIN accounts s ON s.id = m.sender_id \
                 WHERE m.group_id = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3";
        let rows = sqlx::query(&self.dialect.sql(q))
            .bind(group)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        let mut out = rows
            .iter()
            .map(|row| message_record(self.dialect, row, Conversation::Group(group)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        out.reverse();
        Ok(out)
    }

    // Account deletion.

    /// Deletes account `id` with all its chat data, in one transaction (SPEC §6): each group it
    /// created passes to its oldest other ADMIN, else its oldest member (made ADMIN), and a
    /// group left without members is deleted; everything else that names the account goes by
    /// `ON DELETE CASCADE`. Apps it owned become ownerless. Returns the picture and banner it
    /// had (the caller removes uploaded files). [`Error::NotFound`] when there is no such account.
    pub async fn delete_chat_account(&self, id: i64) -> Result<Vec<String>, Error> {
        let d = self.dialect;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&d.sql("SELECT picture_url, banner_url FROM accounts WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound)?;
        let pictures: Vec<String> = ["picture_url", "banner_url"]
            .iter()
            .filter_map(|c| row.try_get::<Option<String>, _>(*c).ok().flatten())
            .collect();
        let created = sqlx::query(&d.sql("SELECT id, name FROM chat_groups WHERE created_by = $1 ORDER BY id"))
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        for group in &created {
            let group_id: i64 = group.try_get("id")?;
            let name: String = group.try_get("name")?;
            let heir = sqlx::query(&d.sql(
                "SELECT user_id FROM chat_members WHERE group_id = $1 AND user_id <> $2 \
                 ORDER BY CASE WHEN role = 'ADMIN' THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1",
            ))
            .bind(group_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(heir) = heir else {
                sqlx::query(&d.sql("DELETE FROM chat_groups WHERE id = $1")).bind(group_id).execute(&mut *tx).await?;
                continue;
            };
            let heir: i64 = heir.try_get("user_id")?;
            // Names are unique per creator: one the heir already uses gets the group's id.
            let clash = sqlx::query(&d.sql("SELECT 1 AS x FROM chat_groups WHERE created_by = $1 AND name = $2"))
                .bind(heir)
                .bind(&name)
                .fetch_optional(&mut *tx)
                .await?;
            let name = if clash.is_some() { renamed(&name, group_id) } else { name };
            sqlx::query(&d.sql("UPDATE chat_groups SET created_by = $1, name = $2 WHERE id = $3"))
                .bind(heir)
                .bind(&name)
                .bind(group_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&d.sql("UPDATE chat_members SET role = 'ADMIN' WHERE group_id = $1 AND user_id = $2"))
                .bind(group_id)
                .bind(heir)
                .execute(&mut *tx)
                .await?;
        }
        // Groups others created where this account is the last member.
        let alone = sqlx::query(&d.sql(
            "SELECT m.group_id FROM chat_members m WHERE m.user_id = $1 AND NOT EXISTS \
             (SELECT 1 FROM chat_members o WHERE o.group_id = m.group_id AND o.user_id <> $2)",
        ))
        .bind(id)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for row in &alone {
            let group_id: i64 = row.try_get("group_id")?;
            sqlx::query(&d.sql("DELETE FROM chat_groups WHERE id = $1")).bind(group_id).execute(&mut *tx).await?;
        }
        let owned = sqlx::query(&d.sql("UPDATE apps SET owner_id = NULL WHERE owner_id = $1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if owned.rows_affected() > 0 {
            sqlx::query("UPDATE switchboard_meta SET value = value + 1 WHERE name = 'apps_revision'")
                .execute(&mut *tx)
                .await?;
        }
        // Messages by pair go with either account; say so explicitly rather than lean on the
        // cascade order of each database.
        sqlx::query(&d.sql("DELETE FROM chat_direct_messages WHERE user_lo = $1 OR user_hi = $2"))
            .bind(id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&d.sql("DELETE FROM accounts WHERE id = $1")).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(pictures)
    }
}

/// `name (id)`, cut so that it fits the 100 characters a name may have.
fn renamed(name: &str, id: i64) -> String {
    let suffix = format!(" ({id})");
    let keep = 100usize.saturating_sub(suffix.chars().count());
    let mut out: String = name.chars().take(keep).collect();
    out.push_str(&suffix);
    out
}

async fn insert_member_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    group: i64,
    user: i64,
    role: &str,
    now: i64,
) -> Result<(), Error> {
    sqlx::query(&dialect.sql("INSERT INTO chat_members (group_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)"))
        .bind(group)
        .bind(user)
        .bind(role)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn member_record(row: &AnyRow) -> Result<MemberRecord, sqlx::Error> {
    Ok(MemberRecord {
        user_id: row.try_get("user_id")?,
        username: row.try_get("uname")?,
        role: row.try_get("role")?,
        joined_at: row.try_get("joined_at")?,
    })
}

fn message_record(dialect: Dialect, row: &AnyRow, conversation: Conversation) -> Result<MessageRecord, sqlx::Error> {
    Ok(MessageRecord {
        id: row.try_get("id")?,
        sender_id: row.try_get("sender_id")?,
        username: row.try_get("uname")?,
        conversation,
        content: dialect.text(row, "content")?,
        nonce: row.try_get("nonce")?,
        created_at: row.try_get("created_at")?,
    })
}

/// `INSERT INTO <table_columns> VALUES (…), (…)` with `rows` groups of `columns` placeholders,
/// in the dialect's placeholder form.
fn multi_insert(table_columns: &str, columns: usize, rows: usize) -> String {
    let mut q = format!("INSERT INTO {table_columns} VALUES ");
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            q.push_str(", ");
        }
        q.push('(');
        for c in 0..columns {
            if c > 0 {
                q.push_str(", ");
            }
            n += 1;
            q.push_str(&format!("${n}"));
        }
        q.push(')');
    }
    q
}
