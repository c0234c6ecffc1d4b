//! SQL for apps. Every change bumps `apps_revision` in the same transaction, which is what app
//! caches on every node poll to notice changes made elsewhere.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Dialect, Error, Store, now_ms};

/// An app as stored. `settings` is JSON owned by the apps service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    pub id: String,
    pub number: i64,
    pub key: String,
    pub secret: String,
    pub name: String,
    pub enabled: bool,
    pub owner_id: Option<i64>,
    pub settings: String,
    /// Free text (Push-Alt's workspace description).
    pub description: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a caller gives to create an app; the store assigns `number`.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub id: String,
    pub key: String,
    pub secret: String,
    pub name: String,
    pub enabled: bool,
    pub owner_id: Option<i64>,
    pub settings: String,
    pub description: Option<String>,
}

const COLUMNS: &str =
    "id, number, app_key, secret, name, enabled, owner_id, settings, description, created_at, updated_at";

fn record(dialect: Dialect, row: &AnyRow) -> Result<AppRecord, sqlx::Error> {
    Ok(AppRecord {
        id: row.try_get("id")?,
        number: row.try_get("number")?,
        key: row.try_get("app_key")?,
        secret: row.try_get("secret")?,
        name: row.try_get("name")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        owner_id: row.try_get("owner_id")?,
        settings: dialect.text(row, "settings")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Every app, in creation order.
    pub async fn list_apps(&self) -> Result<Vec<AppRecord>, Error> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM apps ORDER BY number")).fetch_all(self.pool()).await?;
        rows.iter().map(|r| record(self.dialect, r)).collect::<Result<_, _>>().map_err(Error::from)
    }

    /// Every app with the apps revision they are at, read in one snapshot: the list is exactly
    /// what that revision holds, neither older nor newer (the app cache's forward-only rule
    /// depends on it).
    pub async fn apps_snapshot(&self) -> Result<(i64, Vec<AppRecord>), Error> {
        let dialect = self.dialect;
        self.read_snapshot(async |tx| {
            let revision = Store::counter_in(tx, dialect, "apps_revision").await?;
            let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM apps ORDER BY number")).fetch_all(&mut **tx).await?;
            let records = rows.iter().map(|r| record(dialect, r)).collect::<Result<_, _>>()?;
            Ok((revision, records))
        })
        .await
    }

    /// One app by id.
    pub async fn get_app(&self, id: &str) -> Result<AppRecord, Error> {
        let q = format!("SELECT {COLUMNS} FROM apps WHERE id = $1");
        let row = sqlx::query(&self.dialect.sql(&q)).bind(id).fetch_optional(self.pool()).await?;
        row.as_ref().map(|r| record(self.dialect, r)).transpose()?.ok_or(Error::NotFound)
    }

    /// Whether an app holds `id`, and whether one holds `key` (to tell which one a unique
    /// violation was about).
    pub async fn app_id_or_key_taken(&self, id: &str, key: &str) -> Result<(bool, bool), Error> {
        let q = "SELECT id, app_key FROM apps WHERE id = $1 OR app_key = $2";
        let rows = sqlx::query(&self.dialect.sql(q)).bind(id).bind(key).fetch_all(self.pool()).await?;
        let mut taken = (false, false);
        for row in &rows {
            taken.0 |= row.try_get::<String, _>("id")? == id;
            taken.1 |= row.try_get::<String, _>("app_key")? == key;
        }
        Ok(taken)
    }

    /// The counter bumped by every app change.
    pub async fn apps_revision(&self) -> Result<i64, Error> {
        let row = sqlx::query("SELECT value FROM switchboard_meta WHERE name = 'apps_revision'")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("value")?)
    }

    /// Inserts an app with the next `number` (never reused). Returns it with the apps revision
    /// the insert made.
    pub async fn insert_app(&self, new: NewApp) -> Result<(AppRecord, i64), Error> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE switchboard_meta SET value = value + 1 WHERE name = 'app_number'")
            .execute(&mut *tx)
            .await?;
        let number: i64 = sqlx::query("SELECT value FROM switchboard_meta WHERE name = 'app_number'")
            .fetch_one(&mut *tx)
            .await?
            .try_get("value")?;
        let now = now_ms();
        let q = format!("INSERT INTO apps ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
        sqlx::query(&self.dialect.sql(&q))
            .bind(&new.id)
            .bind(number)
            .bind(&new.key)
            .bind(&new.secret)
            .bind(&new.name)
            .bind(i64::from(new.enabled))
            .bind(new.owner_id)
            .bind(&new.settings)
            .bind(&new.description)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.on_write(e))?;
        let revision = bump_revision(&mut tx).await?;
        tx.commit().await?;
        let record = AppRecord {
            id: new.id,
            number,
            key: new.key,
            secret: new.secret,
            name: new.name,
            enabled: new.enabled,
            owner_id: new.owner_id,
            settings: new.settings,
            description: new.description,
            created_at: now,
            updated_at: now,
        };
        Ok((record, revision))
    }

    /// Writes every mutable field of `app` (matched by id). Returns it with the apps revision
    /// the write made.
    pub async fn update_app(&self, app: &AppRecord) -> Result<(AppRecord, i64), Error> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let q = "UPDATE apps SET app_key = $1, secret = $2, name = $3, enabled = $4, owner_id = $5, settings = $6, \
                 description = $7, updated_at = $8 WHERE id = $9";
        let done = sqlx::query(&self.dialect.sql(q))
            .bind(&app.key)
            .bind(&app.secret)
            .bind(&app.name)
            .bind(i64::from(app.enabled))
            .bind(app.owner_id)
            .bind(&app.settings)
            .bind(&app.description)
            .bind(now)
            .bind(&app.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.on_write(e))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        let revision = bump_revision(&mut tx).await?;
        tx.commit().await?;
        Ok((AppRecord { updated_at: now, ..app.clone() }, revision))
    }

    /// Deletes an app; [`Error::NotFound`] when there was none. Returns the apps revision the
    /// delete made.
    pub async fn delete_app(&self, id: &str) -> Result<i64, Error> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(&self.dialect.sql("DELETE FROM apps WHERE id = $1")).bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        let revision = bump_revision(&mut tx).await?;
        tx.commit().await?;
        Ok(revision)
    }
}

/// Moves `apps_revision` on and returns its new value. The row stays locked until the
/// transaction ends, so revisions are handed out in commit order.
async fn bump_revision(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<i64, Error> {
    sqlx::query("UPDATE switchboard_meta SET value = value + 1 WHERE name = 'apps_revision'")
        .execute(&mut **tx)
        .await?;
    let revision: i64 = sqlx::query("SELECT value FROM switchboard_meta WHERE name = 'apps_revision'")
        .fetch_one(&mut **tx)
        .await?
        .try_get("value")?;
    Ok(revision)
}
