//! `POST /api/channel/auth` and the tokens it issues (SPEC §5): the success shape, every
//! refusal, tokens stored hashed, bound to app and channel, reusable, and valid to the second;
//! the admin's channel list, which never shows a token.

use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};

use crate::pushalt_admin::{admin_server, call, refused};
use crate::support::{APP_ID, APP_KEY, APP_SECRET, TestServer, create_app, spawn_server};
use switchboard::channel_tokens::TokenError;

pub async fn channel_auth(server: &TestServer, body: Value) -> (u16, Value) {
    call(server, Method::POST, "/api/channel/auth", Some(body), None).await
}

/// A token for `channel` of the default app.
pub async fn token_for(server: &TestServer, channel: &str, expires_in: Value) -> Value {
    let body =
        json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": channel, "expires_in_seconds": expires_in});
    let (status, v) = channel_auth(server, body).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Seconds between two `YYYY-MM-DD HH:mm:ss` times.
fn seconds_between(from: &str, to: &str) -> i64 {
    (epoch_ms(to) - epoch_ms(from)) / 1000
}

/// A `YYYY-MM-DD HH:mm:ss` UTC time in milliseconds since the epoch.
fn epoch_ms(t: &str) -> i64 {
    let parse = |t: &str| {
        let n: Vec<u32> = t.split(['-', ' ', ':']).map(|p| p.parse().unwrap()).collect();
        let month = time::Month::try_from(n[1] as u8).unwrap();
        let date = time::Date::from_calendar_date(n[0] as i32, month, n[2] as u8).unwrap();
        let clock = time::Time::from_hms(n[3] as u8, n[4] as u8, n[5] as u8).unwrap();
        time::PrimitiveDateTime::new(date, clock).assume_utc().unix_timestamp()
    };
    parse(t) * 1000
}

#[tokio::test]
async fn a_token_for_a_channel() {
    let server = spawn_server().await;
    let v = token_for(&server, "orders", json!(120)).await;
    let number = server.state.apps.by_id(APP_ID).unwrap().number;
    let token = v["token"].as_str().unwrap();
    assert_eq!(token.len(), 64, "256 random bits, hex");
    assert_eq!(v["success"], true);
    assert_eq!(v["message"], "Channel created");
    assert_eq!(v["message_listen_name"], format!("workspace:{number}:orders:message"));
    let data = &v["data"];
    assert_eq!(
        (&data["workspace_id"], &data["channel_name"], &data["token"]),
        (&json!(number), &json!("orders"), &json!(token))
    );
    assert!(data["id"].as_i64().is_some_and(|id| id > 0));
    let (created, expires) = (data["created_at"].as_str().unwrap(), data["expires_at"].as_str().unwrap());
    assert_eq!(created.len(), 19, "YYYY-MM-DD HH:mm:ss: {created}");
    assert!((120..=121).contains(&seconds_between(created, expires)), "{created} → {expires}");
    // Numeric strings and numbers alike; missing or 0 is an hour; more than 30 days is 30 days.
    for (given, want) in [(json!("60"), 60), (Value::Null, 3600), (json!(0), 3600), (json!(99_999_999), 30 * 86_400)] {
        let data = token_for(&server, "orders", given.clone()).await["data"].clone();
        let span = seconds_between(data["created_at"].as_str().unwrap(), data["expires_at"].as_str().unwrap());
        assert!((want..=want + 1).contains(&span), "{given}: {span}");
    }
    // A number as app_id, as JavaScript clients may send it.
    create_app(&server, "4827163", "numeric-key", "numeric-secret").await;
    let body = json!({"app_id": 4827163, "app_key": "numeric-secret", "channel_name": "c"});
    assert_eq!(channel_auth(&server, body).await.0, 200);
    // Stored hashed: the issued text is nowhere in the database.
    let db = std::fs::read(server.dir.path().join("switchboard.db")).unwrap();
    let wal = std::fs::read(server.dir.path().join("switchboard.db-wal")).unwrap_or_default();
    assert!(![db, wal].iter().any(|f| f.windows(64).any(|w| w == token.as_bytes())), "a channel token in plain text");
    server.stop().await;
}

#[tokio::test]
async fn refusals_are_push_alts() {
    let server = spawn_server().await;
    let body = |app_id: &str, app_key: Option<&str>, channel: &str| {
        let mut b = json!({"app_id": app_id, "channel_name": channel});
        if let Some(k) = app_key {
            b["app_key"] = json!(k);
        }
        b
    };
    refused(channel_auth(&server, body("nope", Some(APP_SECRET), "c")).await, 401, "Workspace not found");
    refused(channel_auth(&server, body(APP_ID, Some("wrong"), "c")).await, 401, "Invalid workspace or credentials");
    refused(channel_auth(&server, body(APP_ID, None, "c")).await, 401, "Invalid workspace or credentials");
    refused(channel_auth(&server, body(APP_ID, Some(""), "c")).await, 401, "Invalid workspace or credentials");
    // The public key is not the secret.
    refused(channel_auth(&server, body(APP_ID, Some(APP_KEY), "c")).await, 401, "Invalid workspace or credentials");
    // Another app's secret does not open this one.
    create_app(&server, "app-2", "key-2", "secret-2").await;
    refused(channel_auth(&server, body(APP_ID, Some("secret-2"), "c")).await, 401, "Invalid workspace or credentials");
    // Missing fields and bad channel names are 400.
    refused(
        channel_auth(&server, json!({"app_id": APP_ID, "app_key": APP_SECRET})).await,
        400,
        "app_id and channel_name are required",
    );
    refused(
        channel_auth(&server, json!({"app_key": APP_SECRET, "channel_name": "c"})).await,
        400,
        "app_id and channel_name are required",
    );
    for bad in ["has space", "", "a/b", "'; DROP TABLE channel_tokens; --", &"x".repeat(165)] {
        let (status, v) = channel_auth(&server, body(APP_ID, Some(APP_SECRET), bad)).await;
        assert_eq!((status, &v["success"]), (400, &json!(false)), "{bad}: {v}");
        assert!(v["message"].as_str().unwrap().starts_with("Invalid channel_name"), "{v}");
    }
    refused(
        channel_auth(&server, body(APP_ID, Some(APP_SECRET), "presence-room")).await,
        400,
        "channel_name: presence channels cannot be joined with a channel token",
    );
    for bad in [json!(-5), json!(1.5), json!("soon"), json!(true)] {
        let b = json!({"app_id": APP_ID, "app_key": APP_SECRET, "channel_name": "c", "expires_in_seconds": bad});
        let (status, v) = channel_auth(&server, b).await;
        assert_eq!((status, &v["success"]), (400, &json!(false)), "{v}");
    }
    for raw in ["", "not json", "[1]", "{\"app_id\": 5.5}"] {
        let (status, v) = server.http().request(Method::POST, "/api/channel/auth", raw.as_bytes(), &[]).await;
        assert_eq!((status, &v["success"]), (400, &json!(false)), "{raw}: {v}");
    }
    // A deactivated workspace, with the right credentials.
    switchboard::apps::set_enabled(&server.state.store, APP_ID, false).await.unwrap();
    server.refresh_apps().await;
    refused(channel_auth(&server, body(APP_ID, Some(APP_SECRET), "c")).await, 401, "Workspace Deactivated");
    // Wrong credentials for a deactivated one say only that.
    refused(channel_auth(&server, body(APP_ID, Some("wrong"), "c")).await, 401, "Invalid workspace or credentials");
    server.stop().await;
}

#[tokio::test]
async fn a_pusher_signature_is_a_credential_too() {
    let server = spawn_server().await;
    let body = json!({"app_id": APP_ID, "channel_name": "signed"}).to_string();
    let (status, v) = server.http().signed(Method::POST, "/api/channel/auth", &body, &[]).await;
    assert_eq!((status, &v["data"]["channel_name"]), (200, &json!("signed")), "{v}");
    let now = crate::support::http::now();
    let (status, v) =
        server.http().signed_as(APP_KEY, "wrong", Method::POST, "/api/channel/auth", &body, &[], now).await;
    assert_eq!((status, v), (401, json!({"success": false, "message": "Invalid workspace or credentials"})));
    // Signed by one app, naming another.
    create_app(&server, "app-2", "key-2", "secret-2").await;
    let other = json!({"app_id": "app-2", "channel_name": "x"}).to_string();
    let (status, _) = server.http().signed(Method::POST, "/api/channel/auth", &other, &[]).await;
    assert_eq!(status, 401);
    server.stop().await;
}

#[tokio::test]
async fn tokens_are_reusable_until_their_second_and_bound_to_app_and_channel() {
    let server = spawn_server().await;
    let tokens = &server.state.channel_tokens;
    let apps = &server.state.apps;
    let v = token_for(&server, "orders", json!(1)).await;
    let token = v["token"].as_str().unwrap().to_owned();
    let end = epoch_ms(v["data"]["expires_at"].as_str().unwrap());
    // Every check before the second names the default app and "orders", however often (clients
    // rejoin on every reconnect); at the second it is over.
    for _ in 0..3 {
        let grant = tokens.check_at(apps, &token, end - 1).await.unwrap();
        assert_eq!((&*grant.app.id, grant.channel.as_str(), grant.expires_at), (APP_ID, "orders", end));
    }
    assert!(matches!(tokens.check_at(apps, &token, end).await, Err(TokenError::Invalid)));
    // And on the real clock, once that second has come.
    let now = switchboard::store::now_ms();
    tokio::time::sleep(Duration::from_millis(u64::try_from(end - now).unwrap_or(0) + 5)).await;
    assert!(matches!(tokens.check(apps, &token).await, Err(TokenError::Invalid)));
    // Another app's token grants that app's channel, never this one's.
    create_app(&server, "app-2", "key-2", "secret-2").await;
    let (_, v) =
        channel_auth(&server, json!({"app_id": "app-2", "app_key": "secret-2", "channel_name": "orders"})).await;
    let grant = tokens.check(apps, v["token"].as_str().unwrap()).await.unwrap();
    assert_eq!(&*grant.app.id, "app-2");
    assert_ne!(grant.app.number, apps.by_id(APP_ID).unwrap().number);
    // Forged and malformed tokens.
    for forged in ["0".repeat(64), "not a token".into(), String::new()] {
        assert!(matches!(tokens.check(apps, &forged).await, Err(TokenError::Invalid)), "{forged}");
    }
    // A deactivated app's tokens are refused at join.
    let live = token_for(&server, "orders", json!(3600)).await["token"].as_str().unwrap().to_owned();
    switchboard::apps::set_enabled(&server.state.store, APP_ID, false).await.unwrap();
    server.refresh_apps().await;
    assert!(matches!(tokens.check(apps, &live).await, Err(TokenError::AppDisabled)));
    server.stop().await;
}

#[tokio::test]
async fn admins_list_live_tokens_without_the_tokens() {
    let (server, admin) = admin_server().await;
    for channel in ["a", "b", "c"] {
        token_for(&server, channel, json!(3600)).await;
    }
    let secret_token = token_for(&server, "d", json!(3600)).await["token"].as_str().unwrap().to_owned();
    let (status, v) = call(&server, Method::GET, "/api/channel/channels?page=1&take=3", None, Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!((&v["success"], &v["hasMore"], &v["message"]), (&json!(true), &json!(true), &Value::Null));
    let names: Vec<_> = v["data"].as_array().unwrap().iter().map(|r| r["channel_name"].clone()).collect();
    assert_eq!(names, vec![json!("d"), json!("c"), json!("b")], "newest first");
    assert!(v["data"][0].get("token").is_none() && !v.to_string().contains(&secret_token));
    let (_, v) = call(&server, Method::GET, "/api/channel/channels?page=2&take=3", None, Some(&admin)).await;
    assert_eq!((v["data"].as_array().unwrap().len(), &v["hasMore"]), (1, &json!(false)));
    for bad in ["page=0", "take=0", "take=101", "page=-1", "page=x", "take=2.5"] {
        let got = call(&server, Method::GET, &format!("/api/channel/channels?{bad}"), None, Some(&admin)).await;
        refused(got, 400, "Invalid pagination parameters");
    }
    let id = v["data"][0]["id"].as_i64().unwrap();
    let (status, v) = call(&server, Method::GET, &format!("/api/channel/{id}"), None, Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(v["data"]["workspace"], json!({"name": server.state.apps.by_id(APP_ID).unwrap().name}));
    assert_eq!(v["data"]["channel_name"], "a");
    assert!(v["data"].get("token").is_none());
    refused(call(&server, Method::GET, "/api/channel/99999", None, Some(&admin)).await, 404, "Channel not found");
    server.stop().await;
}
