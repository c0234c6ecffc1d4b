//! Accounts: register, login and status in both body styles, validation, duplicates, rate
//! limits, and tokens (tampering, expiry, deleted accounts).

use base64::Engine;
use hyper::Method;
use serde_json::{Value, json};

use crate::support::{Http, spawn_server, spawn_with};

pub async fn register(http: &Http, body: Value) -> (u16, Value) {
    http.json(Method::POST, "/auth/register", Some(body), None).await
}

/// Registers `username` and returns its token.
pub async fn account(http: &Http, username: &str) -> String {
    let (s, b) = register(http, json!({"username": username, "password": "password-123"})).await;
    assert_eq!(s, 201, "{b}");
    b["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn register_and_login_in_both_styles() {
    let server = spawn_server().await;
    let http = server.http();

    // Hestia's style.
    let (s, b) = register(&http, json!({"username": "hestia_user", "password": "password-123"})).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["message"], "User registered successfully.");
    assert!(b["id"].is_i64());
    assert_eq!(b["username"], "hestia_user");
    assert_eq!(b["user"], json!({"id": b["id"], "username": "hestia_user", "name": "hestia_user", "email": null}));
    assert!(b["token"].as_str().unwrap().split('.').count() == 3);

    // Notif's style.
    let (s, b) =
        register(&http, json!({"name": "Notif User", "email": "Notif@Example.com", "password": "password-123"})).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["email"], "notif@example.com");
    assert_eq!(b["name"], "Notif User");
    assert_eq!(b["user"]["email"], "notif@example.com");
    assert_ne!(b["id"], Value::Null);

    for (login, path) in
        [(json!({"username": "hestia_user"}), "/auth/login"), (json!({"email": "notif@example.com"}), "/login")]
    {
        let mut body = login.clone();
        body["password"] = "password-123".into();
        let (s, b) = http.json(Method::POST, path, Some(body), None).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["message"], "Login successful.");
        assert!(b["token"].is_string());
        assert!(b["user"]["id"].is_i64());
        let token = b["token"].as_str().unwrap();
        let (s, st) = http.json(Method::GET, "/auth/status", None, Some(token)).await;
        assert_eq!(s, 200);
        assert_eq!(st["authenticated"], true);
        assert_eq!(st["user"]["id"], b["user"]["id"]);
    }

    // Unknown user and wrong password: one answer.
    for body in [
        json!({"username": "hestia_user", "password": "wrong-password"}),
        json!({"username": "nobody", "password": "password-123"}),
    ] {
        let (s, b) = http.json(Method::POST, "/auth/login", Some(body), None).await;
        assert_eq!((s, b), (401, json!({"error": "Invalid credentials."})));
    }
    let (s, b) = http.json(Method::POST, "/auth/login", Some(json!({"username": "hestia_user"})), None).await;
    assert_eq!(s, 400, "{b}");
}

#[tokio::test]
async fn validation_and_duplicates() {
    let server = spawn_server().await;
    let http = server.http();
    for body in [
        json!({"username": "abc"}),
        json!({"password": "password-123"}),
        json!({"username": "ab", "password": "password-123"}),
        json!({"username": "a".repeat(33), "password": "password-123"}),
        json!({"username": "good", "password": "short12"}),
        json!({"username": "good", "password": "p".repeat(129)}),
        json!({"username": "has space", "password": "password-123"}),
        json!({"email": "not-an-email", "password": "password-123"}),
        json!({"username": 42, "password": "password-123"}),
        json!({"username": "good", "password": ["x"]}),
        json!("a string"),
    ] {
        let (s, b) = register(&http, body.clone()).await;
        assert_eq!(s, 400, "{body} -> {b}");
        assert!(b["error"].is_string());
    }
    let (s, b) = http.request(Method::POST, "/auth/register", b"{not json", &[]).await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"].is_string());

    assert_eq!(register(&http, json!({"username": "taken", "password": "password-123"})).await.0, 201);
    let (s, b) = register(&http, json!({"username": "TAKEN", "password": "password-123"})).await;
    assert_eq!((s, b), (409, json!({"error": "Username already taken."})));
    assert_eq!(register(&http, json!({"email": "a@b.co", "password": "password-123"})).await.0, 201);
    let (s, _) = register(&http, json!({"email": "A@B.CO", "password": "password-123"})).await;
    assert_eq!(s, 409);
    // Lengths at the edges are fine.
    assert_eq!(register(&http, json!({"username": "abc", "password": "p".repeat(8)})).await.0, 201);
    assert_eq!(register(&http, json!({"username": "a".repeat(32), "password": "p".repeat(128)})).await.0, 201);
}

#[tokio::test]
async fn status_without_or_with_a_bad_token() {
    let server = spawn_server().await;
    let http = server.http();
    let (s, b) = http.json(Method::GET, "/auth/status", None, None).await;
    assert_eq!((s, b["authenticated"].clone()), (401, json!(false)));
    assert!(b["error"].is_string());
    let (s, b) = http.json(Method::GET, "/status", None, Some("nonsense")).await;
    assert_eq!((s, b["authenticated"].clone()), (401, json!(false)));
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn forged_and_stale_tokens_are_refused() {
    let server = spawn_with(|c| {
        c.auth.jwt_secret = Some(switchboard::config::Secret("a-test-secret-of-32-characters!!".into()))
    })
    .await;
    let http = server.http();
    let token = account(&http, "victim").await;
    let (_, st) = http.json(Method::GET, "/auth/status", None, Some(&token)).await;
    let id = st["user"]["id"].as_i64().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = json!({"sub": id.to_string(), "userId": id, "username": "victim", "iat": now, "exp": now + 3600});
    let sign = |header: Value, claims: &Value, secret: &[u8]| {
        let alg = header["alg"].as_str().unwrap().to_owned();
        let h = jsonwebtoken::Header::new(match alg.as_str() {
            "HS512" => jsonwebtoken::Algorithm::HS512,
            _ => jsonwebtoken::Algorithm::HS256,
        });
        jsonwebtoken::encode(&h, claims, &jsonwebtoken::EncodingKey::from_secret(secret)).unwrap()
    };
    let secret = b"a-test-secret-of-32-characters!!";
    let good = sign(json!({"alg": "HS256"}), &claims, secret);
    assert_eq!(
        http.json(Method::GET, "/dashboard/user", None, Some(&good)).await.0,
        200,
        "a correctly made token works"
    );

    let forged = [
        format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims)),
        sign(json!({"alg": "HS256"}), &claims, b"wrong-secret"),
        sign(json!({"alg": "HS512"}), &claims, secret),
        sign(json!({"alg": "HS256"}), &json!({"sub": id.to_string(), "userId": id}), secret),
        sign(json!({"alg": "HS256"}), &json!({"sub": id.to_string(), "userId": id, "exp": now - 60}), secret),
        format!("{}x", &good[..good.len() - 1]),
    ];
    for token in forged {
        assert_eq!(http.json(Method::GET, "/auth/status", None, Some(&token)).await.0, 401, "{token}");
        assert_eq!(http.json(Method::GET, "/dashboard/user", None, Some(&token)).await.0, 401, "{token}");
    }

    // A token of a deleted account stops working.
    server.state.store.delete_account(id).await.unwrap();
    assert_eq!(http.json(Method::GET, "/dashboard/user", None, Some(&good)).await.0, 401);
    assert_eq!(http.json(Method::GET, "/auth/status", None, Some(&token)).await.0, 401);
}

#[tokio::test]
async fn login_and_register_are_rate_limited() {
    // Registrations and logins share one allowance per address (SPEC §6).
    let server = spawn_with(|c| c.auth.requests_per_ip = 4).await;
    let http = server.http();
    for i in 0..3 {
        assert_eq!(register(&http, json!({"username": format!("user{i}"), "password": "password-123"})).await.0, 201);
    }
    let login = json!({"username": "user0", "password": "password-123"});
    assert_eq!(http.json(Method::POST, "/login", Some(login.clone()), None).await.0, 200);
    let (s, b) = http.json(Method::POST, "/auth/login", Some(login), None).await;
    assert_eq!((s, &b["error"]), (429, &json!("Too many requests, please try again later.")), "the fifth auth request");

    let server = spawn_with(|c| {
        c.auth.failed_logins_per_account = 3;
        c.auth.requests_per_ip = 20;
    })
    .await;
    let http = server.http();
    for i in 0..4 {
        assert_eq!(register(&http, json!({"username": format!("user{i}"), "password": "password-123"})).await.0, 201);
    }
    for _ in 0..3 {
        let (s, _) = http
            .json(Method::POST, "/auth/login", Some(json!({"username": "user0", "password": "nope-nope"})), None)
            .await;
        assert_eq!(s, 401);
    }
    let (s, headers, _) = http
        .request_full(
            Method::POST,
            "/auth/login",
            json!({"username": "USER0", "password": "password-123"}).to_string().as_bytes(),
            &[],
        )
        .await;
    assert_eq!(s, 429, "per account, whatever the case");
    assert!(headers.get("retry-after").is_some());
    // Another account is not affected.
    let (s, _) = http
        .json(Method::POST, "/auth/login", Some(json!({"username": "user1", "password": "password-123"})), None)
        .await;
    assert_eq!(s, 200);
}
