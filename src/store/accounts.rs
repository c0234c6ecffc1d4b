//! SQL for accounts.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Error, Store, now_ms};

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: i64,
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: String,
    pub password_hash: String,
    pub is_admin: bool,
    /// A deactivated account cannot sign in, and its tokens stop working.
    pub active: bool,
    /// Tokens issued before this time (ms since the epoch) are void; 0 when none were revoked.
    pub tokens_valid_after: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a caller gives to create an account; the store assigns the id.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: String,
    pub password_hash: String,
    pub is_admin: bool,
}

const COLUMNS: &str =
    "id, username, email, name, password_hash, is_admin, active, tokens_valid_after, created_at, updated_at";

fn record(row: &AnyRow) -> Result<AccountRecord, sqlx::Error> {
    Ok(AccountRecord {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        is_admin: row.try_get::<i64, _>("is_admin")? != 0,
        active: row.try_get::<i64, _>("active")? != 0,
        tokens_valid_after: row.try_get("tokens_valid_after")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The counter account ids come from. Taking the next id locks its row until the transaction
/// ends, which is also what lines up concurrent first-admin setups.
pub(super) const ACCOUNT_ID: &str = "account_id";

/// Inserts an (active) account with id `id` (from [`ACCOUNT_ID`]) inside `tx`.
pub(super) async fn insert_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    store: &Store,
    id: i64,
    new: NewAccount,
) -> Result<AccountRecord, Error> {
    let now = now_ms();
    let q = format!("INSERT INTO accounts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
    sqlx::query(&store.dialect.sql(&q))
        .bind(id)
        .bind(&new.username)
        .bind(&new.email)
        .bind(&new.name)
        .bind(&new.password_hash)
        .bind(i64::from(new.is_admin))
        .bind(1_i64)
        .bind(0_i64)
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(|e| store.on_write(e))?;
    Ok(AccountRecord {
        id,
        username: new.username,
        email: new.email,
        name: new.name,
        password_hash: new.password_hash,
        is_admin: new.is_admin,
        active: true,
        tokens_valid_after: 0,
        created_at: now,
        updated_at: now,
    })
}

impl Store {
    /// Inserts an account with the next id; [`Error::Conflict`] on a taken username or email.
    pub async fn insert_account(&self, new: NewAccount) -> Result<AccountRecord, Error> {
        let mut tx = self.begin_write().await?;
        let id = Store::next_id(&mut tx, self.dialect, ACCOUNT_ID).await?;
        let record = insert_in(&mut tx, self, id, new).await?;
        tx.commit().await?;
        Ok(record)
    }

    pub async fn account_by_id(&self, id: i64) -> Result<AccountRecord, Error> {
        let q = format!("SELECT {COLUMNS} FROM accounts WHERE id = $1");
        let row = sqlx::query(&self.dialect.sql(&q)).bind(id).fetch_optional(self.pool()).await?;
        row.as_ref().map(record).transpose()?.ok_or(Error::NotFound)
    }

    /// The account whose email or username (both compared case-insensitively) is `login`.
    pub async fn account_by_login(&self, login: &str) -> Result<AccountRecord, Error> {
        let q = format!("SELECT {COLUMNS} FROM accounts WHERE LOWER(email) = LOWER($1) OR LOWER(username) = LOWER($2)");
        let row = sqlx::query(&self.dialect.sql(&q)).bind(login).bind(login).fetch_optional(self.pool()).await?;
        row.as_ref().map(record).transpose()?.ok_or(Error::NotFound)
    }

    /// One page of accounts in id order, `limit` from `offset`; only those that are not admins
    /// when `non_admins` (Push-Alt's list of the users root manages).
    pub async fn accounts_page(&self, non_admins: bool, limit: i64, offset: i64) -> Result<Vec<AccountRecord>, Error> {
        let filter = if non_admins { "WHERE is_admin = 0 " } else { "" };
        let q = format!("SELECT {COLUMNS} FROM accounts {filter}ORDER BY id LIMIT $1 OFFSET $2");
        let rows = sqlx::query(&self.dialect.sql(&q)).bind(limit).bind(offset).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// Writes every mutable field of `account` (matched by id); [`Error::Conflict`] when its
    /// username or email is another account's.
    pub async fn update_account(&self, account: &AccountRecord) -> Result<AccountRecord, Error> {
        let now = now_ms();
        let q = "UPDATE accounts SET username = $1, email = $2, name = $3, password_hash = $4, is_admin = $5, \
                 active = $6, tokens_valid_after = $7, updated_at = $8 WHERE id = $9";
        let done = sqlx::query(&self.dialect.sql(q))
            .bind(&account.username)
            .bind(&account.email)
            .bind(&account.name)
            .bind(&account.password_hash)
            .bind(i64::from(account.is_admin))
            .bind(i64::from(account.active))
            .bind(account.tokens_valid_after)
            .bind(now)
            .bind(account.id)
            .execute(self.pool())
            .await
            .map_err(|e| self.on_write(e))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(AccountRecord { updated_at: now, ..account.clone() })
    }

    pub async fn count_admins(&self) -> Result<i64, Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM accounts WHERE is_admin <> 0").fetch_one(self.pool()).await?;
        Ok(row.try_get("n")?)
    }

    /// The first admin by id, who owns apps pinned by configuration.
    pub async fn first_admin(&self) -> Result<Option<i64>, Error> {
        let row = sqlx::query("SELECT MIN(id) AS id FROM accounts WHERE is_admin <> 0").fetch_one(self.pool()).await?;
        Ok(row.try_get("id")?)
    }

    /// Gives apps without an owner to `owner`.
    pub async fn adopt_ownerless_apps(&self, owner: i64) -> Result<u64, Error> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(&self.dialect.sql("UPDATE apps SET owner_id = $1 WHERE owner_id IS NULL"))
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE switchboard_meta SET value = value + 1 WHERE name = 'apps_revision'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    pub async fn delete_account(&self, id: i64) -> Result<(), Error> {
        let done =
            sqlx::query(&self.dialect.sql("DELETE FROM accounts WHERE id = $1")).bind(id).execute(self.pool()).await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }
}

/// How many admins there are, read inside a transaction.
pub(super) async fn admins_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<i64, Error> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM accounts WHERE is_admin <> 0").fetch_one(&mut **tx).await?;
    Ok(row.try_get("n")?)
}
