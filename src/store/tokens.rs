//! SQL for issued tokens: channel tokens (Push-Alt's `join_channel`), refresh tokens and the
//! one-time setup tokens. Only SHA-256 hashes are stored; callers hash before they ask.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::accounts::{ACCOUNT_ID, AccountRecord, NewAccount, admins_in, insert_in};
use super::{Error, Store, now_ms};

/// A channel token as stored, with the number and name of its app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelTokenRecord {
    pub id: i64,
    pub token_hash: String,
    pub app_id: String,
    pub app_number: i64,
    pub app_name: String,
    pub channel: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Milliseconds since the epoch; the token works while the clock is before it.
    pub expires_at: i64,
}

/// What a caller gives to store a channel token; the store assigns id and creation time.
#[derive(Debug, Clone)]
pub struct NewChannelToken {
    pub token_hash: String,
    pub app_id: String,
    pub channel: String,
    pub expires_at: i64,
}

const CHANNEL_SELECT: &str = "SELECT t.id, t.token_hash, t.app_id, a.number, a.name, t.channel, t.created_at, \
                              t.expires_at FROM channel_tokens t JOIN apps a ON a.id = t.app_id";

fn channel_record(row: &AnyRow) -> Result<ChannelTokenRecord, sqlx::Error> {
    Ok(ChannelTokenRecord {
        id: row.try_get("id")?,
        token_hash: row.try_get("token_hash")?,
        app_id: row.try_get("app_id")?,
        app_number: row.try_get("number")?,
        app_name: row.try_get("name")?,
        channel: row.try_get("channel")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// A setup token presented to create the first admin: its hash, and the time (ms since the
/// epoch) it must have been issued after to be still good.
#[derive(Debug, Clone, Copy)]
pub struct SetupTokenUse<'a> {
    pub hash: &'a str,
    pub issued_after: i64,
}

/// A refresh token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub account_id: i64,
    pub expires_at: i64,
}

impl Store {
    /// Stores a channel token; its app must exist ([`Error::Database`] otherwise, a foreign
    /// key).
    pub async fn insert_channel_token(&self, new: NewChannelToken) -> Result<(i64, i64), Error> {
        let mut tx = self.begin_write().await?;
        let id = Store::next_id(&mut tx, self.dialect, "channel_token_id").await?;
        let now = now_ms();
        let q = "INSERT INTO channel_tokens (id, token_hash, app_id, channel, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)";
        sqlx::query(&self.dialect.sql(q))
            .bind(id)
            .bind(&new.token_hash)
            .bind(&new.app_id)
            .bind(&new.channel)
            .bind(now)
            .bind(new.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.on_write(e))?;
        tx.commit().await?;
        Ok((id, now))
    }

    /// The channel token with this hash, expired or not.
    pub async fn channel_token_by_hash(&self, token_hash: &str) -> Result<ChannelTokenRecord, Error> {
        let q = format!("{CHANNEL_SELECT} WHERE t.token_hash = $1");
        let row = sqlx::query(&self.dialect.sql(&q)).bind(token_hash).fetch_optional(self.pool()).await?;
        row.as_ref().map(channel_record).transpose()?.ok_or(Error::NotFound)
    }

    /// One channel token by id, if it has not expired by `now`.
    pub async fn channel_token(&self, id: i64, now: i64) -> Result<ChannelTokenRecord, Error> {
        let q = format!("{CHANNEL_SELECT} WHERE t.id = $1 AND t.expires_at > $2");
        let row = sqlx::query(&self.dialect.sql(&q)).bind(id).bind(now).fetch_optional(self.pool()).await?;
        row.as_ref().map(channel_record).transpose()?.ok_or(Error::NotFound)
    }

    /// A page of the tokens that have not expired by `now`, newest first, and how many there are.
    pub async fn channel_tokens_page(
        &self,
        now: i64,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ChannelTokenRecord>, i64), Error> {
        let q = format!("{CHANNEL_SELECT} WHERE t.expires_at > $1 ORDER BY t.id DESC LIMIT $2 OFFSET $3");
        let rows = sqlx::query(&self.dialect.sql(&q)).bind(now).bind(limit).bind(offset).fetch_all(self.pool()).await?;
        let total: i64 =
            sqlx::query(&self.dialect.sql("SELECT COUNT(*) AS n FROM channel_tokens WHERE expires_at > $1"))
                .bind(now)
                .fetch_one(self.pool())
                .await?
                .try_get("n")?;
        Ok((rows.iter().map(channel_record).collect::<Result<_, _>>()?, total))
    }

    /// Deletes the channel tokens that expired by `now`; returns how many.
    pub async fn delete_expired_channel_tokens(&self, now: i64) -> Result<u64, Error> {
        let done = sqlx::query(&self.dialect.sql("DELETE FROM channel_tokens WHERE expires_at <= $1"))
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Stores a refresh token for an account.
    pub async fn insert_refresh_token(&self, token_hash: &str, account_id: i64, expires_at: i64) -> Result<(), Error> {
        let q = "INSERT INTO refresh_tokens (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
        sqlx::query(&self.dialect.sql(q))
            .bind(token_hash)
            .bind(account_id)
            .bind(now_ms())
            .bind(expires_at)
            .execute(self.pool())
            .await
            .map_err(|e| self.on_write(e))?;
        Ok(())
    }

    /// The refresh token with this hash, expired or not.
    pub async fn refresh_token(&self, token_hash: &str) -> Result<RefreshTokenRecord, Error> {
        let q = "SELECT token_hash, account_id, expires_at FROM refresh_tokens WHERE token_hash = $1";
        let row = sqlx::query(&self.dialect.sql(q)).bind(token_hash).fetch_optional(self.pool()).await?;
        let row = row.ok_or(Error::NotFound)?;
        Ok(RefreshTokenRecord {
            token_hash: row.try_get("token_hash")?,
            account_id: row.try_get("account_id")?,
            expires_at: row.try_get("expires_at")?,
        })
    }

    /// Deletes one refresh token; false when there was none.
    pub async fn delete_refresh_token(&self, token_hash: &str) -> Result<bool, Error> {
        let done = sqlx::query(&self.dialect.sql("DELETE FROM refresh_tokens WHERE token_hash = $1"))
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes every refresh token of an account (a new password, a deactivation).
    pub async fn delete_refresh_tokens_of(&self, account_id: i64) -> Result<u64, Error> {
        let done = sqlx::query(&self.dialect.sql("DELETE FROM refresh_tokens WHERE account_id = $1"))
            .bind(account_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes the refresh tokens that expired by `now`; returns how many.
    pub async fn delete_expired_refresh_tokens(&self, now: i64) -> Result<u64, Error> {
        let done = sqlx::query(&self.dialect.sql("DELETE FROM refresh_tokens WHERE expires_at <= $1"))
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Stores a setup token (one per start while no admin exists).
    pub async fn insert_setup_token(&self, token_hash: &str) -> Result<(), Error> {
        sqlx::query(&self.dialect.sql("INSERT INTO setup_tokens (token_hash, created_at) VALUES ($1, $2)"))
            .bind(token_hash)
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(|e| self.on_write(e))?;
        Ok(())
    }

    /// The stored hash equal to `token_hash` of a token issued after `issued_after` (ms since
    /// the epoch), if there is one (the caller compares the two in constant time).
    pub async fn setup_token(&self, token_hash: &str, issued_after: i64) -> Result<String, Error> {
        let q = "SELECT token_hash FROM setup_tokens WHERE token_hash = $1 AND created_at > $2";
        let row =
            sqlx::query(&self.dialect.sql(q)).bind(token_hash).bind(issued_after).fetch_optional(self.pool()).await?;
        Ok(row.ok_or(Error::NotFound)?.try_get("token_hash")?)
    }

    /// Deletes the setup tokens issued at or before `issued_by` (ms since the epoch), which no
    /// longer work; returns how many.
    pub async fn delete_setup_tokens_before(&self, issued_by: i64) -> Result<u64, Error> {
        let done = sqlx::query(&self.dialect.sql("DELETE FROM setup_tokens WHERE created_at <= $1"))
            .bind(issued_by)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Creates the first admin, in one transaction: with `token`, that setup token is used up
    /// (and every other one with it) and the account inserted, or nothing happens; without one
    /// (the CLI's `setup`) the account is inserted and the setup tokens voided. `None` when an
    /// admin exists already (nothing used up); [`Error::NotFound`] when the token is unknown,
    /// expired, or used by a setup that came first.
    ///
    /// Concurrent setups take the account-id counter's row lock before anything else, so they
    /// run one after the other and the later one sees the earlier one's admin, whatever the
    /// database's isolation level (a `COUNT` alone, under READ COMMITTED, would let two pass).
    pub async fn insert_first_admin(
        &self,
        token: Option<SetupTokenUse<'_>>,
        new: NewAccount,
    ) -> Result<Option<AccountRecord>, Error> {
        let mut tx = self.begin_write().await?;
        let id = Store::next_id(&mut tx, self.dialect, ACCOUNT_ID).await?;
        if admins_in(&mut tx).await? > 0 {
            return Ok(None);
        }
        if let Some(token) = token {
            let q = "DELETE FROM setup_tokens WHERE token_hash = $1 AND created_at > $2";
            let used =
                sqlx::query(&self.dialect.sql(q)).bind(token.hash).bind(token.issued_after).execute(&mut *tx).await?;
            if used.rows_affected() == 0 {
                return Err(Error::NotFound);
            }
        }
        let record = insert_in(&mut tx, self, id, NewAccount { is_admin: true, ..new }).await?;
        sqlx::query("DELETE FROM setup_tokens").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(record))
    }
}
