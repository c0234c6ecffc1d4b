//! SQL for push registrations: FCM tokens and Web Push subscriptions. One device belongs to
//! one account (registering it moves it), an account keeps at most `max` of each (the oldest
//! registration goes), and a re-registration counts as new.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Error, Store, now_ms};

/// An FCM registration token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcmTokenRecord {
    pub id: i64,
    pub account_id: i64,
    pub token: String,
}

/// A Web Push subscription as stored; keys in base64url, as the browser gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebPushRecord {
    pub id: i64,
    pub account_id: i64,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// What a new Web Push subscription carries.
#[derive(Debug, Clone, Copy)]
pub struct NewWebPush<'a> {
    pub endpoint: &'a str,
    pub p256dh: &'a str,
    pub auth: &'a str,
}

/// Accounts per `IN (…)` list, well under every database's parameter limit.
const CHUNK: usize = 500;

fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

fn distinct(accounts: &[i64]) -> Vec<i64> {
    let mut accounts = accounts.to_vec();
    accounts.sort_unstable();
    accounts.dedup();
    accounts
}

fn endpoint_hash(endpoint: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(endpoint.as_bytes()))
}

impl Store {
    /// Registers `token` for `account` (moving it from any other account), dropping the
    /// account's oldest tokens past `max`.
    pub async fn register_fcm_token(&self, account: i64, token: &str, max: i64) -> Result<(), Error> {
        let d = self.dialect;
        let mut tx = self.begin_write().await?;
        // Taken first: the counter's row lock orders concurrent registrations.
        let id = Store::next_id(&mut tx, d, "fcm_token_id").await?;
        sqlx::query(&d.sql("DELETE FROM fcm_tokens WHERE token = $1")).bind(token).execute(&mut *tx).await?;
        sqlx::query(&d.sql("INSERT INTO fcm_tokens (id, account_id, token, registered_at) VALUES ($1, $2, $3, $4)"))
            .bind(id)
            .bind(account)
            .bind(token)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.on_write(e))?;
        let ids: Vec<i64> = sqlx::query(&d.sql("SELECT id FROM fcm_tokens WHERE account_id = $1 ORDER BY id DESC"))
            .bind(account)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        for old in ids.iter().skip(usize::try_from(max).unwrap_or(0)) {
            sqlx::query(&d.sql("DELETE FROM fcm_tokens WHERE id = $1")).bind(*old).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Registers a Web Push subscription for `account` (moving the endpoint from any other
    /// account, with the new keys), dropping the account's oldest past `max`.
    pub async fn register_web_push(&self, account: i64, sub: NewWebPush<'_>, max: i64) -> Result<(), Error> {
        let d = self.dialect;
        let hash = endpoint_hash(sub.endpoint);
        let mut tx = self.begin_write().await?;
        let id = Store::next_id(&mut tx, d, "web_push_id").await?;
        sqlx::query(&d.sql("DELETE FROM web_push_subscriptions WHERE endpoint_hash = $1"))
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&d.sql(
            "INSERT INTO web_push_subscriptions (id, account_id, endpoint_hash, endpoint, p256dh, auth, registered_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ))
        .bind(id)
        .bind(account)
        .bind(&hash)
        .bind(sub.endpoint)
        .bind(sub.p256dh)
        .bind(sub.auth)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.on_write(e))?;
        let ids: Vec<i64> =
            sqlx::query(&d.sql("SELECT id FROM web_push_subscriptions WHERE account_id = $1 ORDER BY id DESC"))
                .bind(account)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<_, _>>()?;
        for old in ids.iter().skip(usize::try_from(max).unwrap_or(0)) {
            sqlx::query(&d.sql("DELETE FROM web_push_subscriptions WHERE id = $1"))
                .bind(*old)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every FCM token of these accounts (each listed once however often it is named).
    pub async fn fcm_tokens_of(&self, accounts: &[i64]) -> Result<Vec<FcmTokenRecord>, Error> {
        let sql = "SELECT id, account_id, token FROM fcm_tokens WHERE account_id IN (:accounts) ORDER BY id";
        self.rows_of_accounts(sql, accounts, |row| {
            Ok(FcmTokenRecord {
                id: row.try_get("id")?,
                account_id: row.try_get("account_id")?,
                token: self.dialect.text(row, "token")?,
            })
        })
        .await
    }

    /// Every Web Push subscription of these accounts (each listed once however often it is
    /// named).
    pub async fn web_push_of(&self, accounts: &[i64]) -> Result<Vec<WebPushRecord>, Error> {
        let sql = "SELECT id, account_id, endpoint, p256dh, auth FROM web_push_subscriptions \
                   WHERE account_id IN (:accounts) ORDER BY id";
        self.rows_of_accounts(sql, accounts, |row| self.web_push_record(row)).await
    }

    fn web_push_record(&self, row: &AnyRow) -> Result<WebPushRecord, sqlx::Error> {
        Ok(WebPushRecord {
            id: row.try_get("id")?,
            account_id: row.try_get("account_id")?,
            endpoint: self.dialect.text(row, "endpoint")?,
            p256dh: self.dialect.text(row, "p256dh")?,
            auth: self.dialect.text(row, "auth")?,
        })
    }

    /// The accounts among `accounts` that take push notifications: those not in
    /// `do_not_disturb` (SPEC §6).
    pub async fn accounts_taking_push(&self, accounts: &[i64]) -> Result<Vec<i64>, Error> {
        let sql = "SELECT id FROM accounts WHERE id IN (:accounts) AND chat_status <> 'do_not_disturb' ORDER BY id";
        self.rows_of_accounts(sql, accounts, |row| row.try_get("id")).await
    }

    /// Runs `sql`, whose `:accounts` is an `IN` list, for the distinct `accounts` in chunks of
    /// [`CHUNK`], mapping each row with `map`.
    async fn rows_of_accounts<T>(
        &self,
        sql: &str,
        accounts: &[i64],
        map: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        for chunk in distinct(accounts).chunks(CHUNK) {
            let sql = self.dialect.sql(&sql.replace(":accounts", &placeholders(chunk.len()))).into_owned();
            let mut query = sqlx::query(&sql);
            for account in chunk {
                query = query.bind(*account);
            }
            for row in query.fetch_all(self.pool()).await? {
                out.push(map(&row)?);
            }
        }
        Ok(out)
    }

    /// Forgets a token FCM called unregistered; whether it was there.
    pub async fn delete_fcm_token(&self, id: i64) -> Result<bool, Error> {
        let done = sqlx::query(&self.dialect.sql("DELETE FROM fcm_tokens WHERE id = $1"))
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets a subscription its push service called gone; whether it was there.
    pub async fn delete_web_push(&self, id: i64) -> Result<bool, Error> {
        let done = sqlx::query(&self.dialect.sql("DELETE FROM web_push_subscriptions WHERE id = $1"))
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
