//! SQL for name/value settings (Push-Alt's `settings`: the app name and time zone given at
//! setup, `installed_at`, and whatever an admin stores).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Error, Store, now_ms};

/// One setting as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingRecord {
    pub name: String,
    pub value: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn record(row: &AnyRow) -> Result<SettingRecord, sqlx::Error> {
    Ok(SettingRecord {
        name: row.try_get("name")?,
        value: row.try_get("value")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Every setting, by name.
    pub async fn settings(&self) -> Result<Vec<SettingRecord>, Error> {
        let rows = sqlx::query("SELECT name, value, created_at, updated_at FROM settings ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    pub async fn setting(&self, name: &str) -> Result<SettingRecord, Error> {
        let q = "SELECT name, value, created_at, updated_at FROM settings WHERE name = $1";
        let row = sqlx::query(&self.dialect.sql(q)).bind(name).fetch_optional(self.pool()).await?;
        row.as_ref().map(record).transpose()?.ok_or(Error::NotFound)
    }

    /// Sets each `(name, value)` in one transaction, inserting the names that are new unless
    /// that would make more than `max` settings (then nothing is written and `false` comes
    /// back).
    pub async fn put_settings(&self, pairs: &[(String, String)], max: i64) -> Result<bool, Error> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        for (name, value) in pairs {
            let exists = sqlx::query(&self.dialect.sql("SELECT name FROM settings WHERE name = $1"))
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if exists {
                sqlx::query(&self.dialect.sql("UPDATE settings SET value = $1, updated_at = $2 WHERE name = $3"))
                    .bind(value)
                    .bind(now)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                continue;
            }
            let count: i64 =
                sqlx::query("SELECT COUNT(*) AS n FROM settings").fetch_one(&mut *tx).await?.try_get("n")?;
            if count >= max {
                return Ok(false);
            }
            sqlx::query(
                &self.dialect.sql("INSERT INTO settings (name, value, created_at, updated_at) VALUES ($1, $2, $3, $4)"),
            )
            .bind(name)
            .bind(value)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.on_write(e))?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
