//! Every difference between SQLite, PostgreSQL and MySQL/MariaDB that the store has to know,
//! and nothing else. Queries are written once with `$1`-style placeholders.

use std::borrow::Cow;
use std::path::Path;

use sqlx::Row;
use sqlx::any::AnyRow;

/// The database family behind a [`super::Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    /// Picks the dialect from a connection URL's scheme.
    pub fn from_url(url: &str) -> Option<Self> {
        let scheme = url.split("://").next()?;
        match scheme {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            _ => None,
        }
    }

    /// The name migrations use for it (`-- only: …`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }

    /// The statement that opens a transaction which will write: on SQLite `BEGIN IMMEDIATE`,
    /// which takes the write lock at once (waiting up to `busy_timeout`). A deferred one that
    /// reads first fails at its first write with "database is locked", without waiting, when
    /// another connection wrote since its read began. Others: the driver's own `BEGIN`.
    pub fn begin_write(self) -> Option<&'static str> {
        match self {
            Self::Sqlite => Some("BEGIN IMMEDIATE"),
            Self::Postgres | Self::MySql => None,
        }
    }

    /// What ends a `SELECT` that holds its rows to the end of the transaction, so that
    /// transactions taking the same row run one after the other: PostgreSQL's `FOR NO KEY
    /// UPDATE` (foreign keys to the row can still be checked meanwhile), MySQL's `FOR UPDATE`;
    /// nothing on SQLite, whose write transactions hold the database's one write lock already.
    pub fn lock_rows(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR NO KEY UPDATE",
            Self::MySql => " FOR UPDATE",
        }
    }

    /// The file of a `sqlite://PATH[?options]` URL; `None` for other databases.
    pub fn sqlite_path(url: &str) -> Option<&Path> {
        let rest = url.strip_prefix("sqlite://")?;
        Some(Path::new(rest.split('?').next().unwrap_or_default()))
    }

    /// A query with one parameter, a table name, that returns a row when that table exists in
    /// the database (schema) the connection uses.
    pub fn table_exists_sql(self) -> &'static str {
        match self {
            Self::Sqlite => "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1",
            Self::Postgres => {
                "SELECT 1 FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = $1"
            }
            Self::MySql => {
                "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = $1"
            }
        }
    }

    /// What makes the next transaction read one snapshot from its first statement to its last:
    /// (a statement before `BEGIN`, one right after it). SQLite's transactions do already (WAL).
    pub fn snapshot_statements(self) -> (Option<&'static str>, Option<&'static str>) {
        match self {
            Self::Sqlite => (None, None),
            Self::Postgres => (None, Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")),
            Self::MySql => (Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"), None),
        }
    }

    /// The URL sqlx understands (MariaDB speaks the MySQL protocol; SQLite files are created).
    pub fn driver_url(self, url: &str) -> String {
        match self {
            Self::MySql => url.replacen("mariadb://", "mysql://", 1),
            Self::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        }
    }

    /// Rewrites `$1, $2, …` for MySQL, which only knows `?`. Every query binds its parameters
    /// in order and uses each once, so the rewrite is positional.
    pub fn sql<'a>(self, query: &'a str) -> Cow<'a, str> {
        if self != Self::MySql || !query.contains('$') {
            return Cow::Borrowed(query);
        }
        let mut out = String::with_capacity(query.len());
        let mut chars = query.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
                out.push('?');
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    }

    /// Reads a `TEXT` column. MySQL reports TEXT to sqlx's Any driver as a BLOB, so the bytes
    /// are read and checked as UTF-8 there.
    pub fn text(self, row: &AnyRow, column: &str) -> Result<String, sqlx::Error> {
        match row.try_get::<String, _>(column) {
            Ok(s) => Ok(s),
            Err(e) if self == Self::MySql => {
                let bytes: Vec<u8> = row.try_get(column).map_err(|_| e)?;
                String::from_utf8(bytes)
                    .map_err(|err| sqlx::Error::ColumnDecode { index: column.into(), source: Box::new(err) })
            }
            Err(e) => Err(e),
        }
    }

    /// Whether an error is a unique-constraint violation, and on what (as far as the database
    /// says).
    pub fn unique_violation(self, err: &sqlx::Error) -> Option<String> {
        let db = err.as_database_error()?;
        let code = db.code().unwrap_or_default();
        let unique = match self {
            Self::Sqlite => code == "2067" || code == "1555",
            Self::Postgres => code == "23505",
            Self::MySql => code == "23000" || code == "1062",
        };
        unique.then(|| db.message().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(Dialect::sqlite_path("sqlite://./d/x.db?mode=rwc"), Some(Path::new("./d/x.db")));
        assert_eq!(Dialect::sqlite_path("postgres://h/db"), None);
    }

    #[test]
    fn mysql_placeholders() {
        assert_eq!(Dialect::MySql.sql("a = $1 AND b = $12"), "a = ? AND b = ?");
        assert_eq!(Dialect::Postgres.sql("a = $1"), "a = $1");
    }
}
