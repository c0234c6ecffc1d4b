//! Push-Alt's admin API end to end (SPEC §5): setup with the printed one-time token, sessions
//! (login, refresh, logout), the profile, the accounts an admin manages, settings, the
//! connection test; and every Bearer refusal (none, forged, expired, deactivated, not an admin).

use hyper::Method;
use serde_json::{Value, json};

use crate::support::{Http, TestServer, spawn_server, spawn_with};

pub const ADMIN_EMAIL: &str = "root@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// A JSON request with an optional bearer token.
pub async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    server.http().json(method, path, body, token).await
}

/// Asserts Push-Alt's failure envelope with `status` and `message`.
#[track_caller]
pub fn refused(got: (u16, Value), status: u16, message: &str) {
    assert_eq!(got, (status, json!({"success": false, "message": message})));
}

/// Completes setup with the server's printed token: the first admin.
pub async fn set_up(server: &TestServer) {
    let body = json!({
        "setup_token": server.setup_token.as_deref().expect("a fresh server prints a setup token"),
        "app_name": "Push", "timezone": "UTC", "name": "Root",
        "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "password_confirm": ADMIN_PASSWORD,
    });
    let (status, v) = call(server, Method::POST, "/api/setup/complete", Some(body), None).await;
    assert_eq!(status, 200, "{v}");
}

/// Logs in; returns (access token, refresh token).
pub async fn login(server: &TestServer, email: &str, password: &str) -> (String, String) {
    let (status, v) =
        call(server, Method::POST, "/api/auth/login", Some(json!({"email": email, "password": password})), None).await;
    assert_eq!(status, 200, "{v}");
    let data = &v["data"];
    (data["access_token"].as_str().unwrap().to_owned(), data["refresh_token"].as_str().unwrap().to_owned())
}

/// A set-up server and its admin's access token.
pub async fn admin_server() -> (TestServer, String) {
    let server = spawn_server().await;
    set_up(&server).await;
    let (access, _) = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    (server, access)
}

/// A user added by the admin, and its access token.
pub async fn add_user(server: &TestServer, admin: &str, email: &str) -> (i64, String) {
    let body = json!({"name": "User", "email": email, "password": "user password 1"});
    let (status, v) = call(server, Method::POST, "/api/admin/add", Some(body), Some(admin)).await;
    assert_eq!(status, 200, "{v}");
    let (access, _) = login(server, email, "user password 1").await;
    (v["data"]["id"].as_i64().unwrap(), access)
}

#[tokio::test]
async fn setup_once_with_the_printed_token_and_never_the_password_back() {
    let server = spawn_server().await;
    let token = server.setup_token.clone().unwrap();
    assert_eq!(
        call(&server, Method::GET, "/api/setup/complete", None, None).await,
        (200, json!({"success": true, "data": {"setup_completed": false}}))
    );
    let body = |token: &str, confirm: &str| {
        json!({"setup_token": token, "app_name": "Push", "timezone": "Asia/Jakarta", "name": "Root",
               "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "password_confirm": confirm})
    };
    let post = |b: Value| call(&server, Method::POST, "/api/setup/complete", Some(b), None);
    refused(post(json!({"setup_token": token, "name": "Root"})).await, 400, "All fields are required");
    let mut unconfirmed = body(&token, "");
    unconfirmed.as_object_mut().unwrap().remove("password_confirm");
    refused(post(unconfirmed).await, 400, "All fields are required");
    refused(post(body(&token, "something else")).await, 400, "Passwords do not match");
    refused(post(body(&crate::support::APP_SECRET.repeat(8), ADMIN_PASSWORD)).await, 401, "Invalid setup token");
    refused(post(body("", ADMIN_PASSWORD)).await, 401, "Invalid setup token");
    let short = json!({"setup_token": token, "app_name": "a", "timezone": "UTC", "name": "R",
                       "email": ADMIN_EMAIL, "password": "short", "password_confirm": "short"});
    refused(post(short).await, 400, "Password must be from 8 to 128 characters.");
    // The refusals used nothing up: the token still sets up, once.
    let (status, v) = post(body(&token, ADMIN_PASSWORD)).await;
    assert_eq!(
        (status, &v),
        (
            200,
            &json!({"success": true, "message": "Setup completed successfully", "data": {
                "settings": {"app_name": "Push", "timezone": "Asia/Jakarta"},
                "user": {"name": "Root", "email": ADMIN_EMAIL},
            }})
        )
    );
    assert!(!v.to_string().contains(ADMIN_PASSWORD), "the password is never echoed");
    refused(post(body(&token, ADMIN_PASSWORD)).await, 400, "Setup already completed, cannot insert again");
    assert_eq!(call(&server, Method::GET, "/api/setup/complete", None, None).await.1["data"]["setup_completed"], true);
    // The admin signs in and sees the settings setup stored.
    let (access, _) = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, v) = call(&server, Method::GET, "/api/setting/gets_form_setting", None, Some(&access)).await;
    let today = &v["data"]["installed_at"];
    assert_eq!(v["data"]["app_name"], "Push");
    assert_eq!(v["data"]["timezone"], "Asia/Jakarta");
    assert_eq!(today.as_str().map(str::len), Some(10), "{v}");
    let (status, v) = call(&server, Method::GET, "/api/setting/last_installed", None, Some(&access)).await;
    assert_eq!((status, &v["data"]["value"]), (200, today));
    server.stop().await;
}

#[tokio::test]
async fn every_start_before_setup_prints_a_token_and_none_after() {
    use crate::support::binary::{Running, serve};
    let token_of = |stdout: &str| {
        let line = stdout.lines().find(|l| l.starts_with("Setup token")).map(str::to_owned);
        line.map(|l| l.rsplit(' ').next().unwrap().to_owned())
    };
    let dir = tempfile::tempdir().unwrap();
    let (stdout, _) = Running::start(&mut serve(dir.path(), &[])).stop();
    let first = token_of(&stdout).unwrap_or_else(|| panic!("no setup token printed:\n{stdout}"));
    // The first start's token still works after a restart, which prints another one.
    let second = Running::start(&mut serve(dir.path(), &[]));
    let body = json!({"setup_token": first, "app_name": "a", "timezone": "UTC", "name": "R",
                      "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "password_confirm": ADMIN_PASSWORD});
    let (status, v) = Http::new(second.addr).json(Method::POST, "/api/setup/complete", Some(body), None).await;
    assert_eq!(status, 200, "{v}");
    let (stdout, _) = second.stop();
    assert!(token_of(&stdout).is_some_and(|t| t != first), "a fresh token each start:\n{stdout}");
    let (stdout, _) = Running::start(&mut serve(dir.path(), &[])).stop();
    assert_eq!(token_of(&stdout), None, "{stdout}");
}

#[tokio::test]
async fn sessions_login_refresh_logout() {
    let server = spawn_server().await;
    set_up(&server).await;
    let (status, v) = call(
        &server,
        Method::POST,
        "/api/auth/login",
        Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["success"], true);
    assert_eq!(v["message"], "Login successful");
    let data = &v["data"];
    assert_eq!((&data["email"], &data["name"], &data["type"]), (&json!(ADMIN_EMAIL), &json!("Root"), &json!("Bearer")));
    let access = data["access_token"].as_str().unwrap();
    let refresh = data["refresh_token"].as_str().unwrap().to_owned();
    // The access token lasts an hour.
    let claims = jwt_claims(access);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);

    // One answer for an unknown email and a wrong password.
    let wrong = |email: &str, password: &str| {
        call(&server, Method::POST, "/api/auth/login", Some(json!({"email": email, "password": password})), None)
    };
    refused(wrong("nobody@example.com", ADMIN_PASSWORD).await, 401, "Invalid email or password");
    refused(wrong(ADMIN_EMAIL, "wrong password").await, 401, "Invalid email or password");
    refused(wrong("", "").await, 400, "Email and password are required");

    let post = |path: &'static str, body: Value| call(&server, Method::POST, path, Some(body), None);
    let (status, v) = post("/api/auth/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!((status, &v["success"], &v["message"]), (200, &json!(true), &json!("Token refreshed")));
    let fresh = v["data"]["access_token"].as_str().unwrap().to_owned();
    assert_eq!(call(&server, Method::GET, "/api/auth/profile", None, Some(&fresh)).await.0, 200);
    // The refresh token stays good until logout.
    assert_eq!(post("/api/auth/refresh", json!({"refresh_token": refresh})).await.0, 200);
    refused(post("/api/auth/refresh", json!({})).await, 400, "Refresh token required");
    refused(post("/api/auth/refresh", json!({"refresh_token": "forged"})).await, 401, "Invalid refresh token");
    let forged = "0".repeat(64);
    refused(post("/api/auth/refresh", json!({"refresh_token": forged})).await, 401, "Invalid refresh token");
    assert_eq!(
        post("/api/auth/logout", json!({"refresh_token": refresh})).await,
        (200, json!({"success": true, "message": "Logged out successfully"}))
    );
    refused(post("/api/auth/refresh", json!({"refresh_token": refresh})).await, 401, "Invalid refresh token");
    refused(post("/api/auth/logout", json!({"refresh_token": refresh})).await, 400, "Invalid refresh token");
    refused(post("/api/auth/logout", json!({})).await, 400, "Refresh token required");
    // Refresh tokens are stored hashed: the issued text is nowhere in the database.
    let (_, refresh) = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let db = std::fs::read(server.dir.path().join("switchboard.db")).unwrap();
    let wal = std::fs::read(server.dir.path().join("switchboard.db-wal")).unwrap_or_default();
    let needle = refresh.as_bytes();
    assert!(![db, wal].iter().any(|f| f.windows(needle.len()).any(|w| w == needle)), "a refresh token in plain text");
    server.stop().await;
}

#[tokio::test]
async fn logins_are_rate_limited_per_address() {
    let server = spawn_with(|c| c.auth.requests_per_ip = 2).await;
    set_up(&server).await;
    let http = server.http();
    let body = json!({"email": ADMIN_EMAIL, "password": "wrong password"}).to_string();
    let mut statuses = Vec::new();
    let (headers, v) = loop {
        let (status, headers, v) = http.request_full(Method::POST, "/api/auth/login", body.as_bytes(), &[]).await;
        if status == 429 {
            break (headers, v);
        }
        statuses.push(status);
        assert!(statuses.len() <= 4, "never limited: {statuses:?}");
    };
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(v, json!({"success": false, "message": "Too many requests, please try again later."}));
    assert!(crate::support::retry_after(&headers) >= 1);
    server.stop().await;
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused_and_deleted() {
    let server = spawn_server().await;
    set_up(&server).await;
    let (_, refresh) = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // Age it in the store: the clock is not ours to move in a live server.
    let hash = switchboard::auth::opaque::hash(&refresh);
    let record = server.state.store.refresh_token(&hash).await.unwrap();
    server.state.store.delete_refresh_token(&hash).await.unwrap();
    server.state.store.insert_refresh_token(&hash, record.account_id, switchboard::store::now_ms() - 1).await.unwrap();
    let post = || call(&server, Method::POST, "/api/auth/refresh", Some(json!({"refresh_token": refresh})), None);
    refused(post().await, 401, "Refresh token expired");
    refused(post().await, 401, "Invalid refresh token");
    server.stop().await;
}

fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn profile_and_its_update() {
    let (server, admin) = admin_server().await;
    let (status, v) = call(&server, Method::GET, "/api/auth/profile", None, Some(&admin)).await;
    assert_eq!(status, 200);
    let user = &v["data"];
    assert_eq!(
        (&user["email"], &user["name"], &user["role"], &user["is_root"], &user["status"]),
        (&json!(ADMIN_EMAIL), &json!("Root"), &json!("admin"), &json!(true), &json!("active"))
    );
    assert!(user.get("password").is_none() && user.get("password_hash").is_none() && !v.to_string().contains("argon2"));
    let put = |body: Value| call(&server, Method::PUT, "/api/auth/profile/update", Some(body), Some(&admin));
    refused(put(json!({"name": "Only a name"})).await, 400, "Name and email are required");
    refused(put(json!({"name": "R", "email": "not an email"})).await, 400, "Email is not a valid address.");
    refused(
        put(json!({"name": "R", "email": ADMIN_EMAIL, "password": "short"})).await,
        400,
        "Password must be from 8 to 128 characters.",
    );
    let (_, other) = add_user(&server, &admin, "taken@example.com").await;
    refused(put(json!({"name": "R", "email": "taken@example.com"})).await, 409, "Email already registered");
    let (status, v) = put(json!({"name": "Renamed", "email": "new@example.com", "password": "a new password"})).await;
    assert_eq!(
        (status, &v["message"], &v["data"]["name"]),
        (200, &json!("Profile updated successfully"), &json!("Renamed"))
    );
    assert_eq!(v["data"]["email"], "new@example.com");
    login(&server, "new@example.com", "a new password").await;
    refused(
        call(
            &server,
            Method::POST,
            "/api/auth/login",
            Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
            None,
        )
        .await,
        401,
        "Invalid email or password",
    );
    // Not an admin, but a profile all the same.
    assert_eq!(call(&server, Method::GET, "/api/auth/profile", None, Some(&other)).await.1["data"]["role"], "user");
    server.stop().await;
}

#[tokio::test]
async fn a_new_password_or_a_deactivation_voids_every_token_the_account_holds() {
    let (server, admin) = admin_server().await;
    let (id, user) = add_user(&server, &admin, "ann@example.com").await;
    let profile = async |token: &str| call(&server, Method::GET, "/api/auth/profile", None, Some(token)).await;
    // A week's account token from /auth/login works on Push-Alt's API too (documented).
    let (status, v) = call(
        &server,
        Method::POST,
        "/auth/login",
        Some(json!({"email": "ann@example.com", "password": "user password 1"})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let week = v["token"].as_str().unwrap().to_owned();
    assert_eq!(profile(&week).await.0, 200);
    // Ann changes her password: what she (or a thief) held before stops at once, the token she
    // changed it with included; a login right after works.
    let change = json!({"name": "Ann", "email": "ann@example.com", "password": "a new password"});
    assert_eq!(call(&server, Method::PUT, "/api/auth/profile/update", Some(change), Some(&user)).await.0, 200);
    for old in [&user, &week] {
        refused(profile(old).await, 401, "Invalid token");
        let (status, _) = call(&server, Method::GET, "/auth/status", None, Some(old)).await;
        assert_eq!(status, 401, "every surface checks the same account");
    }
    let (fresh, refresh) = login(&server, "ann@example.com", "a new password").await;
    assert_eq!(profile(&fresh).await.0, 200, "a token issued after the change works");
    // An admin's deactivation voids them too, and reactivating does not bring them back.
    let status = |s: &str| json!({"id": id, "name": "Ann", "email": "ann@example.com", "status": s});
    assert_eq!(call(&server, Method::PUT, "/api/admin/update", Some(status("deactivated")), Some(&admin)).await.0, 200);
    assert_eq!(call(&server, Method::POST, "/api/admin/restore", Some(json!({"id": id})), Some(&admin)).await.0, 200);
    refused(profile(&fresh).await, 401, "Invalid token");
    let again = call(&server, Method::POST, "/api/auth/refresh", Some(json!({"refresh_token": refresh})), None).await;
    refused(again, 401, "Invalid refresh token");
    let (after, _) = login(&server, "ann@example.com", "a new password").await;
    assert_eq!(profile(&after).await.0, 200);
    // A change that is neither keeps the tokens.
    let rename = json!({"name": "Ann B", "email": "ann@example.com"});
    assert_eq!(call(&server, Method::PUT, "/api/auth/profile/update", Some(rename), Some(&after)).await.0, 200);
    assert_eq!(profile(&after).await.0, 200);
    server.stop().await;
}

/// Every route behind a bearer token, with a body where it takes one.
const BEARER_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/auth/profile"),
    ("PUT", "/api/auth/profile/update"),
    ("GET", "/api/workspaces"),
    ("POST", "/api/workspaces"),
    ("GET", "/api/workspaces/1"),
    ("PUT", "/api/workspaces/1"),
    ("DELETE", "/api/workspaces"),
];

/// Routes only admins may call.
const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/cors"),
    ("POST", "/api/cors"),
    ("PUT", "/api/cors/1"),
    ("DELETE", "/api/cors/1"),
    ("POST", "/api/admin/add"),
    ("PUT", "/api/admin/update"),
    ("POST", "/api/admin/restore"),
    ("GET", "/api/admin/1/view"),
    ("GET", "/api/admin/admins"),
    ("POST", "/api/setting/add_or_update"),
    ("POST", "/api/setting/update_form_setting"),
    ("GET", "/api/setting/app_name/view"),
    ("GET", "/api/setting/settings"),
    ("GET", "/api/setting/gets_form_setting"),
    ("GET", "/api/setting/last_installed"),
    ("GET", "/api/channel/channels"),
    ("GET", "/api/channel/1"),
    ("POST", "/api/test-connection"),
    ("GET", "/api/test-connection/test-connections"),
];

#[tokio::test]
async fn bearer_refusals_on_every_protected_route() {
    let secret = "a-test-secret-of-32-characters!!";
    let server = spawn_with(|c| c.auth.jwt_secret = Some(switchboard::config::Secret(secret.into()))).await;
    set_up(&server).await;
    let (admin, _) = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (user_id, user) = add_user(&server, &admin, "user@example.com").await;
    let now = crate::support::http::now();
    let sign = |claims: Value, key: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
        )
        .unwrap()
    };
    let admin_id = jwt_claims(&admin)["userId"].clone();
    let expired =
        sign(json!({"sub": admin_id.to_string(), "userId": admin_id, "iat": now - 7200, "exp": now - 3600}), secret);
    let forged = sign(
        json!({"sub": admin_id.to_string(), "userId": admin_id, "iat": now, "exp": now + 3600}),
        "another secret of 32 characters!",
    );
    let http = server.http();
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(20_000));
    for (method, path) in BEARER_ROUTES.iter().chain(ADMIN_ROUTES) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let with = |token: Option<String>| {
            let http = http.clone();
            let method = method.clone();
            let big = big.clone();
            async move {
                let auth = token.map(|t| format!("Bearer {t}"));
                let headers: Vec<(&str, &str)> =
                    auth.as_deref().map(|a| vec![("authorization", a)]).unwrap_or_default();
                // The body is larger than any of these routes reads: refused before it is.
                http.request(method, path, big.as_bytes(), &headers).await
            }
        };
        refused(with(None).await, 401, "No token provided");
        for bad in [expired.clone(), forged.clone(), "not.a.jwt".to_owned()] {
            refused(with(Some(bad)).await, 401, "Invalid token");
        }
        if ADMIN_ROUTES.contains(&(method.as_str(), path)) {
            refused(with(Some(user.clone())).await, 403, "Admin access required");
        }
    }
    // A deactivated account's token stops at once, and it cannot sign in again.
    let body = json!({"id": user_id, "name": "User", "email": "user@example.com", "status": "deactivated"});
    assert_eq!(call(&server, Method::PUT, "/api/admin/update", Some(body), Some(&admin)).await.0, 200);
    refused(call(&server, Method::GET, "/api/auth/profile", None, Some(&user)).await, 401, "Invalid token");
    refused(
        call(
            &server,
            Method::POST,
            "/api/auth/login",
            Some(json!({"email": "user@example.com", "password": "user password 1"})),
            None,
        )
        .await,
        401,
        "Invalid email or password",
    );
    server.stop().await;
}

#[tokio::test]
async fn admins_manage_users() {
    let (server, admin) = admin_server().await;
    let call = |method: Method, path: &str, body: Option<Value>| {
        let path = path.to_owned();
        let server = &server;
        let admin = admin.clone();
        async move { call(server, method, &path, body, Some(&admin)).await }
    };
    refused(
        call(Method::POST, "/api/admin/add", Some(json!({"name": "A"}))).await,
        400,
        "Name, email, and password are required",
    );
    let (status, v) = call(
        Method::POST,
        "/api/admin/add",
        Some(json!({"name": "Ann", "email": "ann@example.com", "password": "ann password"})),
    )
    .await;
    assert_eq!((status, &v["message"]), (200, &json!("User added successfully")));
    let ann = v["data"].clone();
    assert_eq!((&ann["role"], &ann["is_root"], &ann["status"]), (&json!("user"), &json!(false), &json!("active")));
    let id = ann["id"].as_i64().unwrap();
    refused(
        call(
            Method::POST,
            "/api/admin/add",
            Some(json!({"name": "A", "email": "ann@example.com", "password": "ann password"})),
        )
        .await,
        409,
        "Email already registered",
    );
    // The list holds accounts that are not admins.
    let (_, v) = call(Method::GET, "/api/admin/admins?take=10&skip=0", None).await;
    assert_eq!(
        v["data"].as_array().unwrap().iter().map(|u| u["email"].clone()).collect::<Vec<_>>(),
        vec![json!("ann@example.com")]
    );
    assert_eq!(call(Method::GET, "/api/admin/admins?skip=1", None).await.1["data"], json!([]));
    for bad in ["take=0", "take=101", "take=-1", "take=1.5", "skip=x", "take=1%27%20OR%201%3D1"] {
        refused(
            call(Method::GET, &format!("/api/admin/admins?{bad}"), None).await,
            400,
            "Invalid pagination parameters",
        );
    }
    assert_eq!(call(Method::GET, &format!("/api/admin/{id}/view"), None).await.1["data"], ann);
    refused(call(Method::GET, "/api/admin/999/view", None).await, 404, "User not found");
    // Deactivate, then restore by id and by ids.
    let update = |status: &str| json!({"id": id, "name": "Ann B", "email": "ann@example.com", "status": status});
    let (_, v) = call(Method::PUT, "/api/admin/update", Some(update("deactivated"))).await;
    assert_eq!((&v["data"]["status"], &v["data"]["name"]), (&json!("deactivated"), &json!("Ann B")));
    refused(
        call(Method::PUT, "/api/admin/update", Some(update("sleeping"))).await,
        400,
        "status must be active or deactivated",
    );
    refused(
        call(Method::PUT, "/api/admin/update", Some(json!({"id": id}))).await,
        400,
        "ID, name, and email are required",
    );
    let (_, me) = call(Method::GET, "/api/auth/profile", None).await;
    let me = json!({"id": me["data"]["id"], "name": "Root", "email": ADMIN_EMAIL, "status": "deactivated"});
    refused(call(Method::PUT, "/api/admin/update", Some(me)).await, 400, "You cannot deactivate your own account");
    let (status, v) = call(Method::POST, "/api/admin/restore", Some(json!({"id": id}))).await;
    assert_eq!(
        (status, &v["data"]["status"], &v["message"]),
        (200, &json!("active"), &json!("User restored successfully"))
    );
    call(Method::PUT, "/api/admin/update", Some(update("deactivated"))).await;
    let (_, v) = call(Method::POST, "/api/admin/restore", Some(json!({"ids": [id.to_string()]}))).await;
    assert_eq!(v["data"][0]["status"], "active");
    refused(call(Method::POST, "/api/admin/restore", Some(json!({}))).await, 400, "User ID is required");
    refused(call(Method::POST, "/api/admin/restore", Some(json!({"id": 999}))).await, 404, "User not found");
    // A new password works at once; Ann signs in with it.
    let body = json!({"id": id, "name": "Ann", "email": "ann@example.com", "password": "another password"});
    assert_eq!(call(Method::PUT, "/api/admin/update", Some(body)).await.0, 200);
    login(&server, "ann@example.com", "another password").await;
    server.stop().await;
}

#[tokio::test]
async fn ids_that_are_not_positive_whole_numbers_are_400() {
    let (server, admin) = admin_server().await;
    let bad_ids = [
        json!("abc"),
        json!(-1),
        json!(1.5),
        json!("1.5"),
        json!("-1"),
        json!(0),
        json!("1 OR 1=1"),
        json!("1; DROP TABLE accounts"),
    ];
    for id in &bad_ids {
        for (method, path, body) in [
            (Method::PUT, "/api/admin/update", json!({"id": id, "name": "A", "email": "a@example.com"})),
            (Method::POST, "/api/admin/restore", json!({"id": id})),
            (Method::POST, "/api/admin/restore", json!({"ids": [id]})),
            (Method::DELETE, "/api/workspaces", json!({"ids": [id]})),
        ] {
            let (status, v) = call(&server, method, path, Some(body.clone()), Some(&admin)).await;
            assert_eq!((status, &v["success"]), (400, &json!(false)), "{path} {body}: {v}");
        }
    }
    for id in ["abc", "-1", "1.5", "0", "1%20OR%201=1", "1%27;DROP%20TABLE%20apps;--", "99999999999999999999"] {
        for path in ["/api/admin/{}/view", "/api/workspaces/{}", "/api/channel/{}", "/api/cors/{}"] {
            let path = path.replace("{}", id);
            let method = if path.starts_with("/api/cors") { Method::DELETE } else { Method::GET };
            let got = call(&server, method, &path, None, Some(&admin)).await;
            refused(got, 400, "Invalid id: expected a positive whole number");
        }
    }
    // Numeric strings are ids like numbers.
    let (_, v) = call(
        &server,
        Method::POST,
        "/api/admin/add",
        Some(json!({"name": "B", "email": "b@example.com", "password": "b password"})),
        Some(&admin),
    )
    .await;
    let id = v["data"]["id"].as_i64().unwrap();
    let body = json!({"id": id.to_string(), "name": "B2", "email": "b@example.com"});
    assert_eq!(call(&server, Method::PUT, "/api/admin/update", Some(body), Some(&admin)).await.1["data"]["name"], "B2");
    // The tables are intact after all that.
    assert_eq!(call(&server, Method::GET, "/api/workspaces", None, Some(&admin)).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn settings() {
    let (server, admin) = admin_server().await;
    let post = |path: &'static str, body: Value| call(&server, Method::POST, path, Some(body), Some(&admin));
    assert_eq!(
        post("/api/setting/add_or_update", json!({"name": "brand", "value": "Blue"})).await,
        (200, json!({"success": true, "message": "Setting updated successfully"}))
    );
    post("/api/setting/add_or_update", json!({"name": "brand", "value": "Green"})).await;
    refused(
        post("/api/setting/add_or_update", json!({"name": "brand", "value": ""})).await,
        400,
        "Name and value are required",
    );
    refused(post("/api/setting/add_or_update", json!({"value": "x"})).await, 400, "Name and value are required");
    refused(
        post("/api/setting/add_or_update", json!({"name": "long", "value": "v".repeat(256)})).await,
        400,
        "Setting names and values are at most 255 characters",
    );
    let (status, v) = call(&server, Method::GET, "/api/setting/brand/view", None, Some(&admin)).await;
    assert_eq!((status, &v["data"]["name"], &v["data"]["value"]), (200, &json!("brand"), &json!("Green")));
    refused(
        call(&server, Method::GET, "/api/setting/nothing/view", None, Some(&admin)).await,
        404,
        "Setting not found",
    );

    // The form: multipart as the web app sent it, URL-encoded, or JSON.
    let http = server.http();
    let auth = format!("Bearer {admin}");
    let boundary = "----sb";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"app_name\"\r\n\r\nRenamed\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"timezone\"\r\n\r\nEurope/Paris\r\n--{boundary}--\r\n"
    );
    let ct = format!("multipart/form-data; boundary={boundary}");
    let (status, v) = http
        .request(
            Method::POST,
            "/api/setting/update_form_setting",
            multipart.as_bytes(),
            &[("authorization", &auth), ("content-type", &ct)],
        )
        .await;
    assert_eq!((status, &v["message"]), (200, &json!("Settings updated successfully")), "{v}");
    let form = [("authorization", auth.as_str()), ("content-type", "application/x-www-form-urlencoded")];
    assert_eq!(
        http.request(Method::POST, "/api/setting/update_form_setting", b"color=red&size=xl", &form).await.0,
        200
    );
    assert_eq!(post("/api/setting/update_form_setting", json!({"motd": "hi"})).await.0, 200);
    refused(post("/api/setting/update_form_setting", json!({})).await, 400, "No settings provided");
    refused(post("/api/setting/update_form_setting", json!({"n": 5})).await, 400, "Setting values must be strings");
    let broken = format!("multipart/form-data; boundary={boundary}");
    let (status, v) = http
        .request(
            Method::POST,
            "/api/setting/update_form_setting",
            b"--nope\r\n\r\n",
            &[("authorization", &auth), ("content-type", &broken)],
        )
        .await;
    assert_eq!((status, &v["success"]), (400, &json!(false)), "{v}");
    let (_, v) = call(&server, Method::GET, "/api/setting/gets_form_setting", None, Some(&admin)).await;
    let data = &v["data"];
    assert_eq!(
        (&data["app_name"], &data["timezone"], &data["color"], &data["size"], &data["motd"], &data["brand"]),
        (&json!("Renamed"), &json!("Europe/Paris"), &json!("red"), &json!("xl"), &json!("hi"), &json!("Green"))
    );
    let (_, v) = call(&server, Method::GET, "/api/setting/settings", None, Some(&admin)).await;
    let names: Vec<&str> = v["data"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"installed_at") && names.contains(&"motd"), "{names:?}");
    server.stop().await;
}

#[tokio::test]
async fn test_connection_times_a_database_and_a_broker_round_trip() {
    let (server, admin) = admin_server().await;
    let (status, v) = call(&server, Method::POST, "/api/test-connection", None, Some(&admin)).await;
    assert_eq!(status, 200, "{v}");
    for key in ["database_ms", "broker_ms"] {
        assert!(v["data"][key].as_f64().is_some_and(|ms| ms >= 0.0), "{v}");
    }
    // The probe leaves no connection behind.
    assert_eq!(server.state.realtime.total_connections(), 0);
    server.broker.set_down(true);
    let (status, v) = call(&server, Method::POST, "/api/test-connection", None, Some(&admin)).await;
    assert_eq!((status, &v["success"]), (503, &json!(false)));
    assert_eq!(v["message"], "Broker round trip failed", "the cause is logged, not shown");
    server.broker.set_down(false);
    let (status, v) = call(&server, Method::GET, "/api/test-connection/test-connections", None, Some(&admin)).await;
    assert_eq!((status, &v["success"]), (404, &json!(false)));
    server.stop().await;
}
