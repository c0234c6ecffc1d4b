//! Push registrations (migration 0006) on SQLite, PostgreSQL and MySQL/MariaDB: a device moves
//! between accounts, an account keeps at most `max` of each kind (the oldest goes), account
//! deletion cascades, and lookups take many accounts at once.

use switchboard::store::Store;
use switchboard::store::accounts::NewAccount;
use switchboard::store::push::NewWebPush;

use crate::store_backends::{database_url, with_fresh_database};

async fn exercise(url: &str) {
    let store = Store::connect(url).await.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    store.migrate().await.unwrap();
    let account = |name: &str| NewAccount {
        username: Some(name.into()),
        email: None,
        name: name.into(),
        password_hash: "h".into(),
        is_admin: false,
    };
    let ann = store.insert_account(account("ann")).await.unwrap().id;
    let bob = store.insert_account(account("bob")).await.unwrap().id;

    // FCM: re-registering is idempotent, a token moves between accounts, the cap drops the oldest.
    store.register_fcm_token(ann, "tok-1", 3).await.unwrap();
    store.register_fcm_token(ann, "tok-1", 3).await.unwrap();
    store.register_fcm_token(ann, "tok-2", 3).await.unwrap();
    let tokens = |v: Vec<switchboard::store::push::FcmTokenRecord>| {
        v.into_iter().map(|r| (r.account_id, r.token)).collect::<Vec<_>>()
    };
    assert_eq!(tokens(store.fcm_tokens_of(&[ann]).await.unwrap()), [(ann, "tok-1".into()), (ann, "tok-2".into())]);
    store.register_fcm_token(bob, "tok-1", 3).await.unwrap();
    assert_eq!(tokens(store.fcm_tokens_of(&[ann]).await.unwrap()), [(ann, "tok-2".to_owned())], "moved to bob");
    for n in 3..=5 {
        store.register_fcm_token(ann, &format!("tok-{n}"), 3).await.unwrap();
    }
    let ann_tokens: Vec<String> = store.fcm_tokens_of(&[ann]).await.unwrap().into_iter().map(|r| r.token).collect();
    assert_eq!(ann_tokens, ["tok-3", "tok-4", "tok-5"], "capped at 3, the oldest gone");
    assert_eq!(store.fcm_tokens_of(&[ann, bob]).await.unwrap().len(), 4);
    let long = "t".repeat(512);
    store.register_fcm_token(bob, &long, 3).await.unwrap();
    let bobs = store.fcm_tokens_of(&[bob]).await.unwrap();
    assert!(bobs.iter().any(|r| r.token == long));
    assert!(store.delete_fcm_token(bobs[0].id).await.unwrap());
    assert!(!store.delete_fcm_token(bobs[0].id).await.unwrap());

    // Web Push: unique endpoint (2048 bytes fit), keys replaced on re-registration.
    let endpoint = format!("https://push.example.net/{}", "e".repeat(2048 - 25));
    assert_eq!(endpoint.len(), 2048);
    let sub = |endpoint: &'static str, key: &'static str| NewWebPush { endpoint, p256dh: key, auth: "a" };
    let endpoint: &'static str = endpoint.leak();
    store.register_web_push(ann, sub(endpoint, "k1"), 2).await.unwrap();
    store.register_web_push(ann, sub(endpoint, "k2"), 2).await.unwrap();
    let subs = store.web_push_of(&[ann]).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!((subs[0].endpoint.as_str(), subs[0].p256dh.as_str(), subs[0].auth.as_str()), (endpoint, "k2", "a"));
    store.register_web_push(bob, sub(endpoint, "k3"), 2).await.unwrap();
    assert!(store.web_push_of(&[ann]).await.unwrap().is_empty(), "moved to bob");
    store.register_web_push(bob, sub("https://p.example/1", "k"), 2).await.unwrap();
    store.register_web_push(bob, sub("https://p.example/2", "k"), 2).await.unwrap();
    let bob_subs: Vec<String> = store.web_push_of(&[bob]).await.unwrap().into_iter().map(|r| r.endpoint).collect();
    assert_eq!(bob_subs, ["https://p.example/1", "https://p.example/2"], "capped at 2, the oldest gone");
    let id = store.web_push_of(&[bob]).await.unwrap()[0].id;
    assert!(store.delete_web_push(id).await.unwrap());

    // Many accounts in one lookup (more than one IN list).
    let many: Vec<i64> = (1..=1200).chain([ann, bob]).collect();
    assert_eq!(store.web_push_of(&many).await.unwrap().len(), 1);
    assert_eq!(store.fcm_tokens_of(&many).await.unwrap().len(), 4);

    // Deleting an account deletes its registrations.
    store.delete_account(bob).await.unwrap();
    assert!(store.web_push_of(&[bob]).await.unwrap().is_empty());
    assert!(store.fcm_tokens_of(&[bob]).await.unwrap().is_empty());
    assert_eq!(store.fcm_tokens_of(&[ann]).await.unwrap().len(), 3);
    store.close().await;
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(&format!("sqlite://{}/db.sqlite", dir.path().display())).await;
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
