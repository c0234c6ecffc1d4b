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
    pushalt_data(&store, &c.id).await;
    crate::hestia_store::exercise(&store).await;
    store.close().await;
}

/// Setup tokens: found only while fresh, used up with the first admin, and setups racing each
/// other make one admin (the counter's row lock, not a `COUNT` under READ COMMITTED).
async fn first_admin(
    store: &Store,
    account: impl Fn(&str) -> switchboard::store::accounts::NewAccount,
) -> switchboard::store::accounts::AccountRecord {
    use switchboard::store::Error;
    use switchboard::store::tokens::SetupTokenUse;

    let hash = |n: usize| format!("{n:064x}");
    fn fresh(hash: &str) -> SetupTokenUse<'_> {
        SetupTokenUse { hash, issued_after: 0 }
    }
    let tokens: Vec<String> = (1..=8).map(hash).collect();
    for token in &tokens {
        store.insert_setup_token(token).await.unwrap();
    }
    let issued = switchboard::store::now_ms();
    assert!(store.setup_token(&tokens[0], 0).await.is_ok());
    assert!(matches!(store.setup_token(&tokens[0], issued + 1).await, Err(Error::NotFound)), "expired");
    let expired = SetupTokenUse { hash: &tokens[0], issued_after: issued + 1 };
    assert!(matches!(store.insert_first_admin(Some(expired), account("x@example.com")).await, Err(Error::NotFound)));
    let unknown = hash(99);
    assert!(matches!(
        store.insert_first_admin(Some(fresh(&unknown)), account("x@example.com")).await,
        Err(Error::NotFound)
    ));
    // Eight setups at once, each with a valid token of its own: one admin.
    let account = &account;
    let attempts = tokens.iter().enumerate().map(|(i, token)| async move {
        store.insert_first_admin(Some(fresh(token)), account(&format!("root{i}@example.com"))).await
    });
    let results = futures_util::future::join_all(attempts).await;
    let made: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok().and_then(Option::as_ref)).collect();
    assert_eq!(made.len(), 1, "{results:?}");
    assert!(made[0].is_admin && made[0].active);
    for refused in results.iter().filter(|r| !matches!(r, Ok(Some(_)))) {
        assert!(matches!(refused, Ok(None) | Err(Error::NotFound)), "{refused:?}");
    }
    assert_eq!(store.count_admins().await.unwrap(), 1);
    for token in &tokens {
        assert!(matches!(store.setup_token(token, 0).await, Err(Error::NotFound)), "setup voids every token");
    }
    store.insert_setup_token(&hash(9)).await.unwrap();
    assert_eq!(store.insert_first_admin(Some(fresh(&hash(9))), account("y@example.com")).await.unwrap(), None);
    assert!(store.setup_token(&hash(9), 0).await.is_ok(), "a refused setup uses nothing up");
    assert_eq!(store.insert_first_admin(None, account("z@example.com")).await.unwrap(), None, "nor does the CLI's");
    assert_eq!(store.delete_setup_tokens_before(issued - 60_000).await.unwrap(), 0);
    assert_eq!(store.delete_setup_tokens_before(switchboard::store::now_ms()).await.unwrap(), 1);
    made[0].clone()
}

/// Push-Alt's tables (migration 0003): tokens by hash, the channel list joined with its app,
/// cascades from apps and accounts, setup in one transaction, the CORS list and settings with
/// their caps, account pages and updates.
async fn pushalt_data(store: &Store, app_id: &str) {
    use switchboard::store::Error;
    use switchboard::store::accounts::NewAccount;
    use switchboard::store::tokens::NewChannelToken;

    let described = apps::create(
        store,
        CreateApp { id: Some("ws".into()), description: Some("d".repeat(1024)), ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!(
        apps::list(store).await.unwrap().iter().find(|a| &*a.id == "ws").unwrap().description,
        described.description
    );

    let token = |n: u8| NewChannelToken {
        token_hash: format!("{n:064x}"),
        app_id: app_id.to_owned(),
        channel: format!("c{n}"),
        expires_at: 10_000 + i64::from(n),
    };
    let (first, _) = store.insert_channel_token(token(1)).await.unwrap();
    let (second, _) = store.insert_channel_token(token(2)).await.unwrap();
    assert!(second > first);
    assert!(matches!(store.insert_channel_token(token(1)).await, Err(Error::Conflict(_))), "hashes are unique");
    let found = store.channel_token_by_hash(&format!("{:064x}", 2)).await.unwrap();
    assert_eq!((found.id, found.channel.as_str(), found.app_id.as_str()), (second, "c2", app_id));
    let (page, total) = store.channel_tokens_page(10_001, 1, 0).await.unwrap();
    assert_eq!((page.len(), total), (1, 1), "only c2 is live at 10 001");
    assert_eq!(page[0].app_number, found.app_number);
    assert!(matches!(store.channel_token(first, 10_001).await, Err(Error::NotFound)));
    assert_eq!(store.delete_expired_channel_tokens(10_001).await.unwrap(), 1);
    apps::delete(store, app_id).await.unwrap();
    assert!(matches!(store.channel_token_by_hash(&found.token_hash).await, Err(Error::NotFound)), "cascade");

    let account = |email: &str| NewAccount {
        username: None,
        email: Some(email.into()),
        name: "n".into(),
        password_hash: "h".into(),
        is_admin: false,
    };
    let user = store.insert_account(account("u@example.com")).await.unwrap();
    store.insert_refresh_token(&"a".repeat(64), user.id, 5).await.unwrap();
    store.insert_refresh_token(&"b".repeat(64), user.id, 50).await.unwrap();
    assert_eq!(store.refresh_token(&"b".repeat(64)).await.unwrap().account_id, user.id);
    assert_eq!(store.delete_expired_refresh_tokens(10).await.unwrap(), 1);
    assert!(store.delete_refresh_token(&"b".repeat(64)).await.unwrap());
    store.insert_refresh_token(&"c".repeat(64), user.id, 50).await.unwrap();
    store.delete_account(user.id).await.unwrap();
    assert!(matches!(store.refresh_token(&"c".repeat(64)).await, Err(Error::NotFound)), "cascade");

    let admin = first_admin(store, account).await;

    let other = store.insert_account(account("o@example.com")).await.unwrap();
    assert!(!other.is_admin && other.tokens_valid_after == 0);
    let revoked = switchboard::store::accounts::AccountRecord { tokens_valid_after: 1_234, ..other.clone() };
    store.update_account(&revoked).await.unwrap();
    assert_eq!(store.account_by_id(other.id).await.unwrap().tokens_valid_after, 1_234);
    let page = store.accounts_page(true, 10, 0).await.unwrap();
    assert_eq!(page.iter().map(|a| a.id).collect::<Vec<_>>(), vec![other.id], "admins are left out");
    let taken = switchboard::store::accounts::AccountRecord { email: admin.email.clone(), ..other.clone() };
    assert!(matches!(store.update_account(&taken).await, Err(Error::Conflict(_))));
    let off =
        store.update_account(&switchboard::store::accounts::AccountRecord { active: false, ..other }).await.unwrap();
    assert!(!store.account_by_id(off.id).await.unwrap().active);

    // The CORS list: every change moves its revision on, and a snapshot holds exactly the list
    // of the revision it names (the global origin list only moves forward on it).
    let start = store.cors_revision().await.unwrap();
    let (entry, first) = store.insert_cors_origin("https://a.example", 2).await.unwrap().unwrap();
    assert!(first > start);
    assert!(matches!(store.insert_cors_origin("https://a.example", 2).await, Err(Error::Conflict(_))));
    let (_, second) = store.insert_cors_origin("https://b.example", 2).await.unwrap().unwrap();
    assert_eq!(store.insert_cors_origin("https://c.example", 2).await.unwrap(), None, "full");
    assert!(matches!(store.update_cors_origin(entry.id, "https://b.example").await, Err(Error::Conflict(_))));
    assert_eq!(store.cors_revision().await.unwrap(), second, "refused changes change nothing");
    let updated = store.update_cors_origin(entry.id, "https://z.example").await.unwrap();
    let (revision, list) = store.cors_snapshot().await.unwrap();
    assert_eq!(revision, updated);
    assert_eq!(list.iter().map(|r| r.origin.as_str()).collect::<Vec<_>>(), ["https://z.example", "https://b.example"]);
    let deleted = store.delete_cors_origin(entry.id).await.unwrap();
    assert!(second < updated && updated < deleted);
    assert!(matches!(store.delete_cors_origin(entry.id).await, Err(Error::NotFound)));
    assert_eq!(store.cors_origins().await.unwrap().len(), 1);

    let pairs = |p: &[(&str, &str)]| p.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect::<Vec<_>>();
    assert!(store.put_settings(&pairs(&[("a", "1"), ("b", "2")]), 2).await.unwrap());
    assert!(store.put_settings(&pairs(&[("a", "3")]), 2).await.unwrap(), "an update fits a full table");
    assert!(!store.put_settings(&pairs(&[("b", "9"), ("c", "4")]), 2).await.unwrap(), "no room for c");
    assert_eq!(store.setting("b").await.unwrap().value, "2", "nothing of a refused batch is written");
    let all: Vec<_> = store.settings().await.unwrap().into_iter().map(|r| (r.name, r.value)).collect();
    assert_eq!(all, pairs(&[("a", "3"), ("b", "2")]));
}

/// Creates a fresh database next to `admin_url`, runs `f` on its URL, drops it.
pub(crate) async fn with_fresh_database(admin_url: &str, f: impl AsyncFnOnce(&str)) {
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
pub(crate) fn database_url(var: &str, backend: &str, example: &str) -> Option<String> {
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
