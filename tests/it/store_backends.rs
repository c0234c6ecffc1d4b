//! The one Store and its migrations on SQLite, PostgreSQL and MySQL/MariaDB.
//!
//! PostgreSQL and MySQL come from `TEST_POSTGRES_URL` / `TEST_MYSQL_URL` (the test command sets
//! them). A test whose URL is unset fails, unless `SWITCHBOARD_SKIP_DB_TESTS` names its backend
//! (`postgres`, `mysql`, comma-separated): a deselection someone chose, said on stderr even
//! when the run passes. When a URL is set the server must be reachable. Each run works in a
//! database of its own, dropped at the end.

use sqlx::Executor;
use switchboard::apps::{self, AppSettings, CreateApp};
use switchboard::store::Store;

async fn exercise(url: &str) {
    let store = Store::connect(url).await.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    store.migrate().await.unwrap();
    store.migrate().await.unwrap(); // idempotent
    let rev0 = store.apps_revision().await.unwrap();
    let a = apps::create(&store, CreateApp { id: Some("a1".into()), name: "A".into(), ..Default::default() })
        .await
        .unwrap();
    let b = apps::create(&store, CreateApp { name: "B".into(), ..Default::default() }).await.unwrap();
    assert!(b.number > a.number, "numbers grow");
    assert!(store.apps_revision().await.unwrap() > rev0);
    let dup = apps::create(&store, CreateApp { id: Some("a1".into()), ..Default::default() }).await;
    assert!(matches!(&dup, Err(apps::Error::Duplicate { field: "id", value }) if value == "a1"), "{dup:?}");
    let settings = AppSettings { allowed_origins: vec!["*.example.com".into()], ..Default::default() };
    let updated = apps::set_settings(&store, "a1", &settings).await.unwrap();
    assert_eq!(updated.settings.allowed_origins, vec!["*.example.com".to_owned()]);
    let off = apps::set_enabled(&store, "a1", false).await.unwrap();
    assert!(!off.enabled);
    let rotated = apps::rotate_secret(&store, "a1").await.unwrap();
    assert_ne!(rotated.secret, a.secret);
    let all = apps::list(&store).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(!all[0].enabled);
    // The app cache's read: the list and the revision it holds, in one snapshot (each
    // database has its own way of asking for that).
    let (revision, records) = store.apps_snapshot().await.unwrap();
    assert_eq!(revision, rotated.revision, "the revision of the last change");
    assert_eq!(records.iter().map(|r| r.secret.as_str()).collect::<Vec<_>>()[0], rotated.secret.0);
    apps::delete(&store, "a1").await.unwrap();
    assert!(matches!(apps::delete(&store, "a1").await, Err(apps::Error::Store(switchboard::store::Error::NotFound))));
    // Numbers are never reused.
    let c = apps::create(&store, CreateApp::default()).await.unwrap();
    assert!(c.number > b.number);
    store.close().await;
}

/// Creates a fresh database next to `admin_url`, runs `f` on its URL, drops it.
async fn with_fresh_database(admin_url: &str, f: impl AsyncFnOnce(&str)) {
    sqlx::any::install_default_drivers();
    let name = format!("sb_test_{}_{}", std::process::id(), rand::random::<u32>());
    let admin =
        sqlx::AnyPool::connect(admin_url).await.unwrap_or_else(|e| panic!("{admin_url} is set but unreachable: {e}"));
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
    f(&format!("{base}/{name}")).await;
    admin.execute(format!("DROP DATABASE {name}").as_str()).await.unwrap();
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(&format!("sqlite://{}/nested/dir/db.sqlite", dir.path().display())).await;
}

/// The URL in `var`; `None` only when `backend` is deselected in `SWITCHBOARD_SKIP_DB_TESTS`.
fn database_url(var: &str, backend: &str, example: &str) -> Option<String> {
    if let Ok(url) = std::env::var(var) {
        return Some(url);
    }
    let skip = std::env::var("SWITCHBOARD_SKIP_DB_TESTS").unwrap_or_default();
    if skip.split(',').map(str::trim).any(|b| b == backend) {
        // Straight to stderr: the test harness shows print output of failing tests only.
        let note =
            format!("\n*** store_backends::{backend} NOT RUN: deselected by SWITCHBOARD_SKIP_DB_TESTS={skip} ***\n");
        let _ = std::io::Write::write_all(&mut std::io::stderr(), note.as_bytes());
        return None;
    }
    panic!(
        "{var} is not set, so {backend} would go untested. Set it (e.g. {var}={example}; \
         scripts/test.sh does) or deselect it explicitly with SWITCHBOARD_SKIP_DB_TESTS={backend}"
    );
}

#[tokio::test]
async fn postgres() {
    if let Some(url) = database_url("TEST_POSTGRES_URL", "postgres", "postgres://postgres@127.0.0.1:5432/test") {
        with_fresh_database(&url, async |u| exercise(u).await).await;
    }
}

#[tokio::test]
async fn mysql() {
    if let Some(url) = database_url("TEST_MYSQL_URL", "mysql", "mysql://root@127.0.0.1:3306/test") {
        with_fresh_database(&url, async |u| exercise(u).await).await;
    }
}
