//! The Store: one sqlx pool over SQLite, PostgreSQL or MySQL/MariaDB, its migrations, and the
//! SQL of each aggregate. Rows come back as plain records; services turn them into their types.
//! Nothing here imports a service, a surface or the core.

pub mod accounts;
pub mod apps;
pub mod chat;
pub mod cors;
mod dialect;
pub mod push;
pub mod settings;
pub mod tokens;

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Acquire, AnyPool, ConnectOptions, Executor};

pub use dialect::Dialect;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported database URL (use sqlite://, postgres:// or mysql://)")]
    UnsupportedUrl,
    #[error("not found")]
    NotFound,
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("migration {version} failed: {source}")]
    Migration { version: i64, source: sqlx::Error },
    /// Started without migrating (`run_migrations(false)`) on a schema that is behind.
    #[error("the database lacks migration {version} ({name}): run `switchboard migrate`, or start with migrations on")]
    NotMigrated { version: i64, name: &'static str },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("creating the data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("an online backup is built in for SQLite only")]
    BackupUnsupported,
}

impl Error {
    /// Whether the database refused what was written (a constraint, a value), rather than
    /// being unreachable: the same write without the offending row may succeed.
    pub fn is_refused_write(&self) -> bool {
        matches!(self, Self::Conflict(_) | Self::Database(sqlx::Error::Database(_)))
    }
}

/// The migrations, embedded so the binary carries its schema.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "apps", include_str!("../../migrations/0001_apps.sql")),
    (2, "accounts", include_str!("../../migrations/0002_accounts.sql")),
    (3, "pushalt", include_str!("../../migrations/0003_pushalt.sql")),
    (4, "revocation", include_str!("../../migrations/0004_revocation.sql")),
    (5, "chat", include_str!("../../migrations/0005_chat.sql")),
    (6, "push", include_str!("../../migrations/0006_push.sql")),
    (7, "chat_indexes", include_str!("../../migrations/0007_chat_indexes.sql")),
    (8, "usernames", include_str!("../../migrations/0008_usernames.sql")),
];

/// Cheap to clone: the pool is reference-counted.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

impl Store {
    /// Connects (creating a SQLite file and its directory when needed).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url).ok_or(Error::UnsupportedUrl)?;
        if let Some(path) = Dialect::sqlite_path(url)
            && let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        // Statements are logged at trace only: at debug the app poll (every 500 ms) would write
        // a line each time. A slow statement is still worth a warning.
        let options = dialect
            .driver_url(url)
            .parse::<AnyConnectOptions>()?
            .log_statements(log::LevelFilter::Trace)
            .log_slow_statements(log::LevelFilter::Warn, Duration::from_secs(1));
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 4 } else { 10 })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL lets the CLI write while the server reads; busy_timeout makes the
                        // two wait for each other instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, dialect })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that will write ([`Dialect::begin_write`]): under concurrent writers on
    /// SQLite it waits for the lock instead of failing.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.dialect.begin_write() {
            Some(statement) => self.pool.begin_with(statement).await,
            None => self.pool.begin().await,
        }
    }

    /// Applies every migration not applied yet, in order.
    pub async fn migrate(&self) -> Result<(), Error> {
        // Looked up first: PostgreSQL answers `CREATE TABLE IF NOT EXISTS` on an existing table
        // with a NOTICE, which would be logged at every start. Two nodes starting at once may
        // both get here; `IF NOT EXISTS` keeps that harmless.
        if !self.has_migrations_table().await? {
            self.pool
                .execute(
                    "CREATE TABLE IF NOT EXISTS switchboard_migrations (version BIGINT NOT NULL PRIMARY KEY, \
                     name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL)",
                )
                .await?;
        }
        let applied = self.applied_migrations().await?;
        for (version, name, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            let mut tx = self.pool.begin().await?;
            for statement in statements(sql, self.dialect) {
                tx.execute(statement).await.map_err(|source| Error::Migration { version: *version, source })?;
            }
            sqlx::query(
                &self.dialect.sql("INSERT INTO switchboard_migrations (version, name, applied_at) VALUES ($1, $2, $3)"),
            )
            .bind(*version)
            .bind(*name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Fails with [`Error::NotMigrated`] unless every migration this build carries has been
    /// applied: a server started without migrating must not find a missing table mid-request.
    pub async fn check_migrated(&self) -> Result<(), Error> {
        let applied = if self.has_migrations_table().await? { self.applied_migrations().await? } else { Vec::new() };
        match MIGRATIONS.iter().find(|(version, _, _)| !applied.contains(version)) {
            Some(&(version, name, _)) => Err(Error::NotMigrated { version, name }),
            None => Ok(()),
        }
    }

    async fn has_migrations_table(&self) -> Result<bool, Error> {
        Ok(sqlx::query(&self.dialect.sql(self.dialect.table_exists_sql()))
            .bind("switchboard_migrations")
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    async fn applied_migrations(&self) -> Result<Vec<i64>, Error> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM switchboard_migrations").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    /// A round trip, for health checks.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Maps a unique violation to [`Error::Conflict`].
    fn on_write(&self, err: sqlx::Error) -> Error {
        match self.dialect.unique_violation(&err) {
            Some(what) => Error::Conflict(what),
            None => Error::Database(err),
        }
    }

    /// Runs `read` in a transaction that sees one snapshot from its first statement to its last,
    /// so that a list and the revision it is filed under agree exactly (the forward-only caches
    /// depend on it).
    async fn read_snapshot<T>(
        &self,
        read: impl AsyncFnOnce(&mut sqlx::Transaction<'_, sqlx::Any>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let (before_begin, after_begin) = self.dialect.snapshot_statements();
        let mut conn = self.pool().acquire().await?;
        if let Some(statement) = before_begin {
            conn.execute(statement).await?;
        }
        let mut tx = conn.begin().await?;
        if let Some(statement) = after_begin {
            tx.execute(statement).await?;
        }
        let out = read(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The value of the counter `name` of `switchboard_meta`, read in `tx`.
    async fn counter_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>, dialect: Dialect, name: &str) -> Result<i64, Error> {
        let row = sqlx::query(&dialect.sql("SELECT value FROM switchboard_meta WHERE name = $1"))
            .bind(name)
            .fetch_one(&mut **tx)
            .await?;
        Ok(sqlx::Row::try_get(&row, "value")?)
    }

    /// Moves the counter `name` of `switchboard_meta` on and returns its new value: the next id
    /// of a table whose ids the application makes (portable where auto-increment is not). The
    /// row stays locked until `tx` ends, so concurrent inserts get distinct ids.
    async fn next_id(tx: &mut sqlx::Transaction<'_, sqlx::Any>, dialect: Dialect, name: &str) -> Result<i64, Error> {
        sqlx::query(&dialect.sql("UPDATE switchboard_meta SET value = value + 1 WHERE name = $1"))
            .bind(name)
            .execute(&mut **tx)
            .await?;
        Store::counter_in(tx, dialect, name).await
    }
}

/// Splits a migration file into the statements `dialect` runs: `;` at a line end closes one;
/// `--` lines are comments, and a statement whose comments hold `-- only: sqlite postgres` (any
/// of `sqlite`, `postgres`, `mysql`) runs on those databases alone.
fn statements(sql: &str, dialect: Dialect) -> impl Iterator<Item = &str> {
    sql.split(";\n").map(|s| s.trim().trim_end_matches(';')).filter_map(move |s| {
        let comments: Vec<&str> = s.lines().take_while(|l| l.trim_start().starts_with("--")).collect();
        let start = comments.iter().map(|l| l.len() + 1).sum::<usize>();
        let only = comments.iter().find_map(|l| l.trim_start().strip_prefix("-- only:"));
        let runs = only.is_none_or(|names| names.split_whitespace().any(|n| n == dialect.name()));
        let statement = s[start.min(s.len())..].trim();
        (runs && !statement.is_empty()).then_some(statement)
    })
}

/// Milliseconds since the Unix epoch, the store's time unit.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

impl Store {
    /// Closes the pool (flushes SQLite's WAL on the last connection).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Writes a consistent copy of a SQLite database to `to`, which must not exist, while other
    /// connections (a running server) keep reading and writing: `VACUUM INTO` copies one
    /// snapshot. PostgreSQL and MySQL have their own tools (`pg_dump`, `mysqldump`).
    pub async fn backup_into(&self, to: &Path) -> Result<(), Error> {
        if self.dialect != Dialect::Sqlite {
            return Err(Error::BackupUnsupported);
        }
        sqlx::query("VACUUM INTO $1").bind(to.to_string_lossy().into_owned()).execute(&self.pool).await?;
        Ok(())
    }
}

/// A migrated SQLite store in a temporary directory, for unit tests (keep the directory).
#[cfg(test)]
pub(crate) async fn temp_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let url = format!("sqlite://{}", dir.path().join("db").display());
    let store = Store::connect(&url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    store.migrate().await.unwrap_or_else(|e| panic!("migrate: {e}"));
    (store, dir)
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    /// A write transaction that reads first, while another connection writes: on SQLite the
    /// other waits for it (a deferred BEGIN would let the other commit first, and this
    /// transaction's write would then fail with "database is locked").
    #[tokio::test]
    async fn a_write_transaction_keeps_its_lock_from_the_start() {
        let (store, _dir) = super::temp_store().await;
        sqlx::query("CREATE TABLE t (n INTEGER)").execute(store.pool()).await.unwrap();
        sqlx::query("INSERT INTO t VALUES (0)").execute(store.pool()).await.unwrap();
        let mut tx = store.begin_write().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT n FROM t").fetch_one(&mut *tx).await.unwrap();
        assert_eq!(n, 0);
        let other = {
            let store = store.clone();
            tokio::spawn(async move { sqlx::query("UPDATE t SET n = n + 10").execute(store.pool()).await })
        };
        // Room for the other writer to go first if it could.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        sqlx::query("UPDATE t SET n = n + 1").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        other.await.unwrap().unwrap();
        let n: i64 = sqlx::query_scalar("SELECT n FROM t").fetch_one(store.pool()).await.unwrap();
        assert_eq!(n, 11);
    }

    /// Every foreign key's column leads some index: a parent's delete finds its children (an
    /// account's messages, friendships, tokens) by that index, not by scanning the child table.
    #[tokio::test]
    async fn every_foreign_key_column_leads_an_index() {
        let (store, _dir) = super::temp_store().await;
        let missing: Vec<(String, String)> = sqlx::query_as(
            "SELECT t.name, f.\"from\" FROM sqlite_master t, pragma_foreign_key_list(t.name) f \
             WHERE t.type = 'table' AND NOT EXISTS (SELECT 1 FROM pragma_index_list(t.name) l, \
             pragma_index_info(l.name) i WHERE i.seqno = 0 AND i.name = f.\"from\")",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(missing, [], "foreign key columns without an index (table, column)");
    }

    #[test]
    fn migration_statements_split() {
        let parts: Vec<_> = super::statements(super::MIGRATIONS[0].2, Dialect::Sqlite).collect();
        assert_eq!(parts.len(), 4);
        assert!(parts[0].starts_with("CREATE TABLE switchboard_meta"));
        let sql = "-- all\nA;\n-- why\n-- only: sqlite postgres\nB;\n-- only: mysql\nC;\n";
        let on = |d| super::statements(sql, d).collect::<Vec<_>>();
        assert_eq!(on(Dialect::Sqlite), ["A", "B"]);
        assert_eq!(on(Dialect::Postgres), ["A", "B"]);
        assert_eq!(on(Dialect::MySql), ["A", "C"]);
    }
}
