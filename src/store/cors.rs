//! SQL for the global CORS list (Push-Alt's `cors_entries`): origins every app's browsers may
//! call `/api/*` from (and, with the Socket.IO transport, open handshakes from), beside
//! `CORS_ORIGINS`. Every change bumps `cors_revision` in its own transaction and returns it, so
//! that a node's copy of the list only moves forward.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Error, Store, now_ms};

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsOriginRecord {
    pub id: i64,
    pub origin: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn record(row: &AnyRow) -> Result<CorsOriginRecord, sqlx::Error> {
    Ok(CorsOriginRecord {
        id: row.try_get("id")?,
        origin: row.try_get("origin")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const SELECT: &str = "SELECT id, origin, created_at, updated_at FROM cors_origins ORDER BY id";
const REVISION: &str = "cors_revision";

impl Store {
    /// Every entry, in id order.
    pub async fn cors_origins(&self) -> Result<Vec<CorsOriginRecord>, Error> {
        let rows = sqlx::query(SELECT).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// Every entry with the CORS revision they are at, read in one snapshot: the list is exactly
    /// what that revision holds.
    pub async fn cors_snapshot(&self) -> Result<(i64, Vec<CorsOriginRecord>), Error> {
        let dialect = self.dialect;
        self.read_snapshot(async |tx| {
            let revision = Store::counter_in(tx, dialect, REVISION).await?;
            let rows = sqlx::query(SELECT).fetch_all(&mut **tx).await?;
            Ok((revision, rows.iter().map(record).collect::<Result<_, _>>()?))
        })
        .await
    }

    /// The counter bumped by every change to the list.
    pub async fn cors_revision(&self) -> Result<i64, Error> {
        let row = sqlx::query("SELECT value FROM switchboard_meta WHERE name = 'cors_revision'")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("value")?)
    }

    /// Adds an entry unless the list already holds `max` ([`Error::Conflict`] on a duplicate,
    /// `None` when full); with the revision the insert made.
    pub async fn insert_cors_origin(&self, origin: &str, max: i64) -> Result<Option<(CorsOriginRecord, i64)>, Error> {
        let mut tx = self.begin_write().await?;
        let id = Store::next_id(&mut tx, self.dialect, "cors_origin_id").await?;
        let count: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM cors_origins").fetch_one(&mut *tx).await?.try_get("n")?;
        if count >= max {
            return Ok(None);
        }
        let now = now_ms();
        sqlx::query(
            &self.dialect.sql("INSERT INTO cors_origins (id, origin, created_at, updated_at) VALUES ($1, $2, $3, $4)"),
        )
        .bind(id)
        .bind(origin)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.on_write(e))?;
        let revision = Store::next_id(&mut tx, self.dialect, REVISION).await?;
        tx.commit().await?;
        Ok(Some((CorsOriginRecord { id, origin: origin.to_owned(), created_at: now, updated_at: now }, revision)))
    }

    /// Replaces an entry's origin ([`Error::NotFound`], [`Error::Conflict`] on a duplicate);
    /// returns the revision the change made.
    pub async fn update_cors_origin(&self, id: i64, origin: &str) -> Result<i64, Error> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(&self.dialect.sql("UPDATE cors_origins SET origin = $1, updated_at = $2 WHERE id = $3"))
            .bind(origin)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.on_write(e))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        let revision = Store::next_id(&mut tx, self.dialect, REVISION).await?;
        tx.commit().await?;
        Ok(revision)
    }

    /// Deletes an entry ([`Error::NotFound`]); returns the revision the change made.
    pub async fn delete_cors_origin(&self, id: i64) -> Result<i64, Error> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query(&self.dialect.sql("DELETE FROM cors_origins WHERE id = $1")).bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        let revision = Store::next_id(&mut tx, self.dialect, REVISION).await?;
        tx.commit().await?;
        Ok(revision)
    }
}
