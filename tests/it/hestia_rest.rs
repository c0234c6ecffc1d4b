//! Hestia's REST surface against the real server: every route's success shape and status, and
//! the REST items of the issue's "Bad input" list (tokens, ids, contents, roles, duplicates,
//! account deletion, floods).

use base64::Engine;
use hyper::Method;
use serde_json::{Value, json};

use crate::support::{Http, TestServer, retry_after, spawn_server, spawn_with};

const SECRET: &str = "a-test-secret-of-32-characters!!";

/// A registered user: id and token.
struct U {
    id: i64,
    token: String,
}

async fn register(http: &Http, username: &str) -> U {
    let (s, b) = http
        .json(Method::POST, "/auth/register", Some(json!({"username": username, "password": "password-123"})), None)
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["message"], "User registered successfully.");
    assert_eq!(b["user"]["username"], username);
    U { id: b["user"]["id"].as_i64().unwrap(), token: b["token"].as_str().unwrap().to_owned() }
}

async fn call(http: &Http, method: Method, path: &str, body: Option<Value>, who: &U) -> (u16, Value) {
    http.json(method, path, body, Some(&who.token)).await
}

async fn befriend(http: &Http, a: &U, b: &U) {
    assert_eq!(call(http, Method::POST, &format!("/friends/request/{}", b.id), None, a).await.0, 200);
    assert_eq!(call(http, Method::POST, &format!("/friends/accept/{}", a.id), None, b).await.0, 200);
}

async fn server() -> TestServer {
    spawn_with(|c| c.auth.jwt_secret = Some(switchboard::config::Secret(SECRET.into()))).await
}

#[tokio::test]
async fn users_profiles_and_status() {
    let server = server().await;
    let http = server.http();
    let alice = register(&http, "alice").await;
    let bob = register(&http, "bob").await;

    let (s, b) = http.json(Method::GET, "/auth/status", None, Some(&alice.token)).await;
    assert_eq!((s, &b), (200, &json!({"authenticated": true, "user": {"id": alice.id, "username": "alice"}})));
    let (s, b) = http.json(Method::GET, "/status", None, None).await;
    assert_eq!((s, &b), (401, &json!({"error": "No token provided", "authenticated": false})));
    let (s, b) = http.json(Method::GET, "/auth/status", None, Some("nope")).await;
    assert_eq!((s, b["authenticated"].clone()), (401, json!(false)));

    let (s, me) = call(&http, Method::GET, "/users/me", None, &alice).await;
    assert_eq!(s, 200);
    let keys: Vec<&str> = me.as_object().unwrap().keys().map(String::as_str).collect();
    for key in ["id", "username", "profilePictureUrl", "bio", "createdAt", "profileBannerUrl", "status", "publicKey"] {
        assert!(keys.contains(&key), "{key} in {me}");
    }
    assert_eq!((me["id"].as_i64(), &me["status"], &me["bio"]), (Some(alice.id), &json!("offline"), &Value::Null));
    assert!(me["createdAt"].as_i64().unwrap() > 1_600_000_000_000, "epoch ms");

    let (s, b) = http.get("/users/by-username/ALICE").await;
    assert_eq!((s, b["id"].as_i64()), (200, Some(alice.id)), "public and case-insensitive");
    let (s, b) = http.get(&format!("/users/by-id/{}", bob.id)).await;
    assert_eq!((s, &b["username"]), (200, &json!("bob")));
    assert_eq!(http.get("/users/by-username/nobody").await, (404, json!({"error": "User not found"})));
    assert_eq!(http.get("/users/by-id/424242").await, (404, json!({"error": "User not found"})));

    let (s, b) = call(&http, Method::PATCH, "/users/bio", Some(json!({"bio": "hello"})), &alice).await;
    assert_eq!((s, &b["bio"], &b["id"]), (200, &json!("hello"), &json!(alice.id)));
    let (s, b) = call(&http, Method::PATCH, "/users/bio", Some(json!({"bio": "x".repeat(501)})), &alice).await;
    assert_eq!((s, &b), (400, &json!({"error": "Bio must be a string up to 500 characters."})));
    assert_eq!(call(&http, Method::PATCH, "/users/bio", Some(json!({"bio": 5})), &alice).await.0, 400);

    let (s, b) = call(&http, Method::PATCH, "/users/status", Some(json!({"status": "do_not_disturb"})), &alice).await;
    assert_eq!((s, &b["status"]), (200, &json!("do_not_disturb")));
    let (s, b) = call(&http, Method::PATCH, "/users/status", Some(json!({"status": "busy"})), &alice).await;
    assert_eq!((s, &b), (400, &json!({"error": "Invalid status"})));

    let (s, b) = call(&http, Method::PATCH, "/users/public-key", Some(json!({"publicKey": "pk-1"})), &alice).await;
    assert_eq!((s, &b["publicKey"]), (200, &json!("pk-1")));
    let (s, b) = call(&http, Method::PATCH, "/users/public-key", Some(json!({"publicKey": null})), &alice).await;
    assert_eq!((s, &b["publicKey"]), (200, &Value::Null));
    assert_eq!(call(&http, Method::PATCH, "/users/public-key", Some(json!({})), &alice).await.0, 400);
    let big = json!({"publicKey": "k".repeat(8193)});
    assert_eq!(call(&http, Method::PATCH, "/users/public-key", Some(big), &alice).await.0, 400);

    let (s, b) = call(&http, Method::PATCH, "/users/username", Some(json!({"username": "Bob"})), &alice).await;
    assert_eq!((s, &b), (409, &json!({"error": "Username already taken"})));
    let (s, b) = call(&http, Method::PATCH, "/users/username", Some(json!({"username": "al"})), &alice).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = call(&http, Method::PATCH, "/users/username", Some(json!({"username": "alice2"})), &alice).await;
    assert_eq!((s, &b["username"]), (200, &json!("alice2")));
    // The new name signs in; the token still works.
    let login = json!({"username": "alice2", "password": "password-123"});
    assert_eq!(http.json(Method::POST, "/login", Some(login), None).await.0, 200);
}

/// An account made Notif's way (an email, a free-form name) cannot pass for another user: its
/// name is never shown as a username; and usernames are one whatever their case, even when
/// registrations race.
#[tokio::test]
async fn names_cannot_pass_for_usernames() {
    let server = server().await;
    let http = server.http();
    let victim = register(&http, "victim").await;
    let body = json!({"email": "victim@evil.example", "name": "victim", "password": "password-123"});
    let (s, b) = http.json(Method::POST, "/auth/register", Some(body), None).await;
    assert_eq!(s, 201, "{b}");
    let spoof = U { id: b["id"].as_i64().unwrap(), token: b["token"].as_str().unwrap().to_owned() };
    assert_eq!(call(&http, Method::GET, "/users/me", None, &spoof).await.1["username"], "");
    assert_eq!(call(&http, Method::POST, &format!("/friends/request/{}", victim.id), None, &spoof).await.0, 200);
    let (_, requests) = call(&http, Method::GET, "/friends/requests", None, &victim).await;
    assert_eq!(requests, json!([{"id": spoof.id, "username": ""}]));
    let bad = json!({"email": "cr@evil.example", "name": "a\r\nb", "password": "password-123"});
    assert_eq!(http.json(Method::POST, "/auth/register", Some(bad), None).await.0, 400);

    // Six, within what the password gate lets wait (past it: 503, retried by clients).
    let attempts = (0..6).map(|i| {
        let http = http.clone();
        let name = if i % 2 == 0 { "RaceName" } else { "racename" };
        async move {
            let body = json!({"username": name, "password": "password-123"});
            http.json(Method::POST, "/auth/register", Some(body), None).await.0
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| [201, 409, 503].contains(s)), "{statuses:?}");
}

#[tokio::test]
async fn picture_urls_are_absolute() {
    let server = server().await;
    let http = server.http();
    let alice = register(&http, "alice").await;
    let chat = &server.state.chat;
    let upload = switchboard::chat::Picture::Upload("/uploads/avatars/a.png".into());
    chat.set_picture(alice.id, switchboard::chat::PictureKind::Avatar, Some(upload)).await.unwrap();
    let url = switchboard::chat::Picture::Url("https://cdn.example.com/b.png".into());
    chat.set_picture(alice.id, switchboard::chat::PictureKind::Banner, Some(url)).await.unwrap();
    let (_, me) = call(&http, Method::GET, "/users/me", None, &alice).await;
    assert_eq!(me["profilePictureUrl"], format!("http://{}/uploads/avatars/a.png", server.addr));
    assert_eq!(me["profileBannerUrl"], "https://cdn.example.com/b.png");
    // X-Forwarded-Proto from a client that is not a trusted proxy changes nothing.
    let auth = format!("Bearer {}", alice.token);
    let headers = [("authorization", auth.as_str()), ("x-forwarded-proto", "https"), ("host", "chat.example")];
    let (_, me) = http.request(Method::GET, "/users/me", b"", &headers).await;
    assert_eq!(me["profilePictureUrl"], "http://chat.example/uploads/avatars/a.png");

    // From a trusted proxy it is believed.
    let proxied = spawn_with(|c| c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let http = proxied.http();
    let carol = register(&http, "carol").await;
    let upload = switchboard::chat::Picture::Upload("/uploads/avatars/c.png".into());
    proxied.state.chat.set_picture(carol.id, switchboard::chat::PictureKind::Avatar, Some(upload)).await.unwrap();
    let (_, b) = http.request(Method::GET, "/users/by-username/carol", b"", &headers[1..]).await;
    assert_eq!(b["profilePictureUrl"], "https://chat.example/uploads/avatars/c.png");

    let configured = spawn_with(|c| c.chat.public_url = Some("https://chat.example.com".into())).await;
    let http = configured.http();
    let bob = register(&http, "bob").await;
    let upload = switchboard::chat::Picture::Upload("/uploads/avatars/b.png".into());
    configured.state.chat.set_picture(bob.id, switchboard::chat::PictureKind::Avatar, Some(upload)).await.unwrap();
    let (_, b) = http.get("/users/by-username/bob").await;
    assert_eq!(b["profilePictureUrl"], "https://chat.example.com/uploads/avatars/b.png");
}

#[tokio::test]
async fn friends_routes() {
    let server = server().await;
    let http = server.http();
    let (alice, bob, carol) =
        (register(&http, "alice").await, register(&http, "bob").await, register(&http, "carol").await);
    let path = |p: &str, id: i64| format!("/friends/{p}/{id}");

    let (s, b) = call(&http, Method::POST, &path("request", bob.id), None, &alice).await;
    assert_eq!((s, &b), (200, &json!({"success": true})));
    for (who, to, error) in [
        (&alice, bob.id, "Friend request already exists"),
        (&bob, alice.id, "Friend request already exists"),
        (&alice, alice.id, "Cannot send request to yourself"),
    ] {
        assert_eq!(call(&http, Method::POST, &path("request", to), None, who).await, (400, json!({"error": error})));
    }
    assert_eq!(call(&http, Method::POST, &path("request", 99999), None, &alice).await.0, 404);
    assert_eq!(
        call(&http, Method::GET, "/friends/requests", None, &bob).await,
        (200, json!([{"id": alice.id, "username": "alice"}]))
    );
    assert_eq!(
        call(&http, Method::POST, &path("accept", carol.id), None, &bob).await,
        (404, json!({"error": "Friend request not found"}))
    );
    assert_eq!(call(&http, Method::POST, &path("accept", alice.id), None, &bob).await.0, 200);
    assert_eq!(
        call(&http, Method::GET, "/friends", None, &alice).await,
        (200, json!([{"id": bob.id, "username": "bob"}]))
    );
    assert_eq!(
        call(&http, Method::GET, "/friends", None, &bob).await,
        (200, json!([{"id": alice.id, "username": "alice"}]))
    );
    assert_eq!(
        call(&http, Method::POST, &path("request", alice.id), None, &bob).await,
        (400, json!({"error": "Already friends"}))
    );

    assert_eq!(call(&http, Method::POST, &path("request", alice.id), None, &carol).await.0, 200);
    assert_eq!(
        call(&http, Method::POST, &path("decline", carol.id), None, &alice).await,
        (200, json!({"success": true}))
    );
    assert_eq!(call(&http, Method::POST, &path("decline", carol.id), None, &alice).await.0, 404);
    assert_eq!(call(&http, Method::GET, "/friends/requests", None, &alice).await, (200, json!([])));

    assert_eq!(
        call(&http, Method::DELETE, &format!("/friends/{}", bob.id), None, &alice).await,
        (200, json!({"success": true}))
    );
    assert_eq!(call(&http, Method::DELETE, &format!("/friends/{}", bob.id), None, &alice).await.0, 404);
    assert_eq!(call(&http, Method::GET, "/friends", None, &bob).await, (200, json!([])));
}

#[tokio::test]
async fn groups_routes() {
    let server = server().await;
    let http = server.http();
    let (alice, bob, carol) =
        (register(&http, "alice").await, register(&http, "bob").await, register(&http, "carol").await);

    let (s, g) = call(
        &http,
        Method::POST,
        "/groups",
        Some(json!({"name": " Team ", "description": "d", "isPrivate": true})),
        &alice,
    )
    .await;
    assert_eq!(s, 201, "{g}");
    let id = g["id"].as_i64().unwrap();
    assert_eq!(
        g,
        json!({"id": id, "name": "Team", "description": "d", "isPrivate": true, "createdBy": alice.id, "createdAt": g["createdAt"]})
    );
    let (s, b) = call(&http, Method::POST, "/groups", Some(json!({"name": "Team"})), &alice).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(call(&http, Method::POST, "/groups", Some(json!({"name": "Team"})), &bob).await.0, 201, "per creator");
    for bad in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x".repeat(101)}),
        json!({"name": 5}),
        json!({"name": "a", "isPrivate": "yes"}),
    ] {
        let (s, b) = call(&http, Method::POST, "/groups", Some(bad.clone()), &alice).await;
        assert_eq!(s, 400, "{bad} → {b}");
        assert!(b["error"].is_string());
    }

    let members = |g: i64, u: i64| format!("/groups/{g}/members/{u}");
    let (s, m) = call(&http, Method::POST, &members(id, bob.id), None, &alice).await;
    assert_eq!(s, 201);
    assert_eq!(m, json!({"userId": bob.id, "username": "bob", "role": "MEMBER", "joinedAt": m["joinedAt"]}));
    assert!(m["joinedAt"].as_i64().unwrap() > 1_600_000_000_000);
    assert_eq!(
        call(&http, Method::POST, &members(id, bob.id), None, &alice).await,
        (409, json!({"error": "User is already a member"}))
    );
    assert_eq!(
        call(&http, Method::POST, &members(id, 99999), None, &alice).await,
        (404, json!({"error": "User not found"}))
    );
    assert_eq!(
        call(&http, Method::POST, &members(id, carol.id), None, &bob).await,
        (403, json!({"error": "Admin access required"}))
    );
    assert_eq!(call(&http, Method::POST, &members(id, carol.id), Some(json!({"role": "OWNER"})), &alice).await.0, 400);
    // Non-members learn nothing.
    for (method, path) in [
        (Method::GET, format!("/groups/{id}")),
        (Method::PUT, format!("/groups/{id}")),
        (Method::GET, format!("/groups/{id}/messages")),
        (Method::POST, format!("/groups/{id}/messages")),
        (Method::POST, members(id, carol.id)),
        (Method::DELETE, members(id, bob.id)),
        (Method::GET, "/groups/777777".to_owned()),
    ] {
        let body = (method == Method::POST || method == Method::PUT).then(|| json!({"content": "x", "name": "y"}));
        assert_eq!(
            call(&http, method.clone(), &path, body, &carol).await,
            (404, json!({"error": "Group not found"})),
            "{method} {path}"
        );
    }

    let (s, list) = call(&http, Method::GET, "/groups", None, &bob).await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let team = list.as_array().unwrap().iter().find(|g| g["id"] == id).unwrap();
    assert_eq!(
        (&team["role"], &team["memberCount"], &team["creatorUsername"]),
        (&json!("MEMBER"), &json!(2), &json!("alice"))
    );
    for key in ["name", "description", "isPrivate", "joinedAt", "createdAt", "createdBy"] {
        assert!(team.get(key).is_some(), "{key}");
    }

    let (s, d) = call(&http, Method::GET, &format!("/groups/{id}"), None, &bob).await;
    assert_eq!(s, 200);
    assert_eq!((&d["userRole"], &d["memberCount"], &d["messageCount"]), (&json!("MEMBER"), &json!(2), &json!(0)));
    assert_eq!(d["members"].as_array().unwrap().len(), 2);
    assert_eq!(d["members"][0]["userId"], alice.id);
    assert_eq!(d["members"][0]["role"], "ADMIN");

    assert_eq!(
        call(&http, Method::PUT, &format!("/groups/{id}"), Some(json!({"name": "New"})), &bob).await,
        (403, json!({"error": "Admin access required"}))
    );
    let (s, u) =
        call(&http, Method::PUT, &format!("/groups/{id}"), Some(json!({"name": "New", "isPrivate": false})), &alice)
            .await;
    assert_eq!((s, &u["name"], &u["isPrivate"], &u["description"]), (200, &json!("New"), &json!(false), &json!("d")));

    // Messages: post 201 with the full shape; history oldest first, with before and limit.
    let mut ids = Vec::new();
    for i in 0..5 {
        let who = if i % 2 == 0 { &alice } else { &bob };
        let (s, m) = call(
            &http,
            Method::POST,
            &format!("/groups/{id}/messages"),
            Some(json!({"content": format!(" m{i} ")})),
            who,
        )
        .await;
        assert_eq!(s, 201, "{m}");
        assert_eq!(
            m,
            json!({"id": m["id"], "content": format!("m{i}"), "createdAt": m["createdAt"], "userId": who.id,
                   "username": if i % 2 == 0 { "alice" } else { "bob" }, "groupId": id})
        );
        ids.push(m["id"].as_i64().unwrap());
    }
    let (_, metrics) = http.get("/metrics").await;
    for name in ["switchboard_chat_messages_stored_total", "switchboard_chat_write_batch_messages"] {
        assert!(metrics.as_str().unwrap().contains(name), "{name} in /metrics");
    }
    let (s, h) = call(&http, Method::GET, &format!("/groups/{id}/messages"), None, &bob).await;
    assert_eq!(s, 200);
    assert_eq!(h.as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect::<Vec<_>>(), ids);
    assert_eq!(h[1]["userId"], bob.id);
    let (_, h) =
        call(&http, Method::GET, &format!("/groups/{id}/messages?before={}&limit=2", ids[4]), None, &bob).await;
    assert_eq!(h.as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect::<Vec<_>>(), ids[2..4]);
    for q in ["limit=0", "limit=abc", "before=1.5", "before=-1"] {
        assert_eq!(call(&http, Method::GET, &format!("/groups/{id}/messages?{q}"), None, &bob).await.0, 400, "{q}");
    }

    assert_eq!(
        call(&http, Method::DELETE, &members(id, bob.id), None, &bob).await,
        (403, json!({"error": "Admin access required"}))
    );
    assert_eq!(
        call(&http, Method::DELETE, &members(id, alice.id), None, &alice).await,
        (403, json!({"error": "Admins cannot remove themselves"}))
    );
    assert_eq!(
        call(&http, Method::DELETE, &members(id, carol.id), None, &alice).await,
        (404, json!({"error": "User is not a member"}))
    );
    assert_eq!(
        call(&http, Method::DELETE, &members(id, bob.id), None, &alice).await,
        (200, json!({"message": "User removed from group"}))
    );
    assert_eq!(call(&http, Method::GET, &format!("/groups/{id}"), None, &bob).await.0, 404);
    let admin = json!({"role": "ADMIN"});
    let (s, m) = call(&http, Method::POST, &members(id, carol.id), Some(admin), &alice).await;
    assert_eq!((s, &m["role"]), (201, &json!("ADMIN")));
    assert_eq!(
        call(&http, Method::PUT, &format!("/groups/{id}"), Some(json!({"description": null})), &carol).await.0,
        200
    );
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn bad_tokens_are_refused_in_hestias_format() {
    let server = server().await;
    let http = server.http();
    let alice = register(&http, "alice").await;
    let now = crate::support::http::now();
    let id = alice.id;
    let sign = |alg: jsonwebtoken::Algorithm, claims: &Value, secret: &[u8]| {
        jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), claims, &jsonwebtoken::EncodingKey::from_secret(secret))
            .unwrap()
    };
    let claims = json!({"userId": id, "username": "alice", "iat": now, "exp": now + 3600});
    let hestia_style = sign(jsonwebtoken::Algorithm::HS256, &claims, SECRET.as_bytes());
    assert_eq!(http.json(Method::GET, "/users/me", None, Some(&hestia_style)).await.0, 200, "Hestia's own tokens work");

    let (s, b) = http.json(Method::GET, "/users/me", None, None).await;
    assert_eq!((s, b), (401, json!({"error": "No token provided"})));
    let (s, _) = http.request(Method::GET, "/users/me", b"", &[("authorization", "Basic abc")]).await;
    assert_eq!(s, 401);
    let forged = [
        format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims)),
        sign(jsonwebtoken::Algorithm::HS256, &claims, b"wrong-secret-wrong-secret"),
        sign(jsonwebtoken::Algorithm::HS512, &claims, SECRET.as_bytes()),
        sign(jsonwebtoken::Algorithm::HS256, &json!({"userId": id, "iat": now}), SECRET.as_bytes()),
        sign(
            jsonwebtoken::Algorithm::HS256,
            &json!({"userId": id, "iat": now - 7200, "exp": now - 3600}),
            SECRET.as_bytes(),
        ),
        "not.a.token".to_owned(),
    ];
    for token in &forged {
        for (method, path) in [(Method::GET, "/users/me"), (Method::GET, "/friends"), (Method::POST, "/groups")] {
            let (s, b) = http.json(method, path, Some(json!({"name": "g"})), Some(token)).await;
            assert_eq!((s, b), (403, json!({"error": "Invalid or expired token"})), "{path} {token}");
        }
        let (s, b) = http.json(Method::GET, "/auth/status", None, Some(token)).await;
        assert_eq!((s, &b["authenticated"]), (401, &json!(false)), "{token}");
        assert!(b["error"].is_string());
    }
    assert_eq!(http.json(Method::GET, "/users/me", None, Some(&alice.token)).await.0, 200, "the server is fine");
}

#[tokio::test]
async fn ids_must_be_integers_up_to_2_pow_53() {
    let server = server().await;
    let http = server.http();
    let alice = register(&http, "alice").await;
    let (_, g) = call(&http, Method::POST, "/groups", Some(json!({"name": "G"})), &alice).await;
    let gid = g["id"].as_i64().unwrap();
    for bad in ["abc", "1.5", "-1", "0", "9007199254740993", "99999999999999999999", "1e3", "%20"] {
        assert_eq!(http.get(&format!("/users/by-id/{bad}")).await, (400, json!({"error": "Invalid user ID"})), "{bad}");
        let (s, b) = call(&http, Method::POST, &format!("/friends/request/{bad}"), None, &alice).await;
        assert_eq!((s, &b), (400, &json!({"error": "Invalid user ID"})), "{bad}");
        let (s, b) = call(&http, Method::GET, &format!("/groups/{bad}"), None, &alice).await;
        assert_eq!((s, &b), (400, &json!({"error": "Invalid group ID"})), "{bad}");
        let (s, b) = call(&http, Method::POST, &format!("/groups/{gid}/members/{bad}"), None, &alice).await;
        assert_eq!((s, &b), (400, &json!({"error": "Invalid user ID"})), "{bad}");
    }
    // 2^53 itself is an id (of nobody).
    assert_eq!(http.get("/users/by-id/9007199254740992").await.0, 404);
    assert_eq!(http.get(&format!("/users/by-id/{}", alice.id)).await.0, 200);
}

#[tokio::test]
async fn message_contents_are_checked() {
    let server = server().await;
    let http = server.http();
    let alice = register(&http, "alice").await;
    let (_, g) = call(&http, Method::POST, "/groups", Some(json!({"name": "G"})), &alice).await;
    let path = format!("/groups/{}/messages", g["id"]);
    let auth = format!("Bearer {}", alice.token);
    let post = |body: String| {
        let (http, path, auth) = (http.clone(), path.clone(), auth.clone());
        async move { http.request(Method::POST, &path, body.as_bytes(), &[("authorization", auth.as_str())]).await }
    };
    for (body, error) in [
        (json!({"content": ""}).to_string(), "Content is required"),
        (json!({"content": " \n\t "}).to_string(), "Content is required"),
        (json!({"content": "é".repeat(2049)}).to_string(), "Message too long"),
        (json!({"content": "a\u{0}b"}).to_string(), "Content may not contain NUL characters"),
        (json!({"content": 5}).to_string(), "Content is required"),
        (json!({}).to_string(), "Content is required"),
        (r#"{"content": "\ud800"}"#.to_owned(), "Request body must be valid JSON."),
        (r#"{"content": "x"#.to_owned(), "Request body must be valid JSON."),
    ] {
        let (s, b) = post(body.clone()).await;
        assert_eq!((s, b), (400, json!({ "error": error })), "{body}");
    }
    let (s, m) = post(json!({"content": format!("  {}  ", "é".repeat(2048))}).to_string()).await;
    assert_eq!(s, 201, "2048 characters fit");
    assert_eq!(m["content"].as_str().unwrap().chars().count(), 2048);
    let (s, m) = post(r#"{"content": "\ud83d\ude00"}"#.to_owned()).await;
    assert_eq!((s, &m["content"]), (201, &json!("😀")), "a surrogate pair is one character");
    let (_, h) = call(&http, Method::GET, &path, None, &alice).await;
    assert_eq!(h.as_array().unwrap().len(), 2, "nothing refused was stored");
}

#[tokio::test]
async fn deleting_an_account() {
    let server = server().await;
    let http = server.http();
    let (alice, bob, carol) =
        (register(&http, "alice").await, register(&http, "bob").await, register(&http, "carol").await);
    befriend(&http, &alice, &bob).await;
    let (_, g) = call(&http, Method::POST, "/groups", Some(json!({"name": "G"})), &alice).await;
    let gid = g["id"].as_i64().unwrap();
    call(&http, Method::POST, &format!("/groups/{gid}/members/{}", bob.id), None, &alice).await;
    call(&http, Method::POST, &format!("/groups/{gid}/members/{}", carol.id), Some(json!({"role": "ADMIN"})), &alice)
        .await;
    call(&http, Method::POST, &format!("/groups/{gid}/messages"), Some(json!({"content": "bye"})), &alice).await;
    call(&http, Method::POST, &format!("/friends/request/{}", carol.id), None, &alice).await;
    let name = format!("{}.png", "ab".repeat(16));
    let file = server.dir.path().join("uploads/avatars").join(&name);
    std::fs::write(&file, b"a picture").unwrap();
    let upload = switchboard::chat::Picture::Upload(format!("/uploads/avatars/{name}"));
    server.state.chat.set_picture(alice.id, switchboard::chat::PictureKind::Avatar, Some(upload)).await.unwrap();

    let domain = json!({"domain_name": "alice.example.com"});
    let (s, app) = call(&http, Method::POST, "/dashboard/domains", Some(domain), &alice).await;
    assert_eq!(s, 200, "{app}");

    let (s, b) = call(&http, Method::DELETE, "/users/me", None, &alice).await;
    assert_eq!(s, 204, "{b}");
    assert!(!file.exists(), "its uploaded picture is removed");
    let apps = server.state.store.list_apps().await.unwrap();
    let kept = apps.iter().find(|a| a.key == app["key"]).expect("its app is kept");
    assert_eq!(kept.owner_id, None, "and has no owner");
    assert_eq!(
        call(&http, Method::GET, "/users/me", None, &alice).await,
        (403, json!({"error": "Invalid or expired token"}))
    );
    assert_eq!(http.get(&format!("/users/by-id/{}", alice.id)).await.0, 404);
    assert_eq!(call(&http, Method::GET, "/friends", None, &bob).await, (200, json!([])));
    assert_eq!(call(&http, Method::GET, "/friends/requests", None, &carol).await, (200, json!([])));
    let (s, d) = call(&http, Method::GET, &format!("/groups/{gid}"), None, &bob).await;
    assert_eq!(s, 200);
    assert_eq!(
        (&d["createdBy"], &d["memberCount"], &d["creatorUsername"]),
        (&json!(carol.id), &json!(2), &json!("carol"))
    );
    assert_eq!(call(&http, Method::GET, &format!("/groups/{gid}/messages"), None, &bob).await, (200, json!([])));
    let again = register(&http, "alice").await;
    assert_ne!(again.id, alice.id, "the name is free; ids are not reused");
    assert_eq!(call(&http, Method::DELETE, "/users/me", None, &alice).await.0, 403);
}

#[tokio::test]
async fn message_floods_get_429() {
    let server = spawn_with(|c| {
        c.chat.message_burst = 5;
        c.chat.messages_per_second = 1;
    })
    .await;
    let http = server.http();
    let alice = register(&http, "alice").await;
    let (_, g) = call(&http, Method::POST, "/groups", Some(json!({"name": "G"})), &alice).await;
    let path = format!("/groups/{}/messages", g["id"]);
    let auth = format!("Bearer {}", alice.token);
    let mut refused = None;
    let started = std::time::Instant::now();
    let mut stored = 0;
    for i in 0..20 {
        let body = json!({"content": format!("m{i}")}).to_string();
        let (s, headers, b) =
            http.request_full(Method::POST, &path, body.as_bytes(), &[("authorization", &auth)]).await;
        match s {
            201 => stored += 1,
            429 => {
                refused = Some((headers, b));
                break;
            }
            other => panic!("{other} {b}"),
        }
    }
    let (headers, b) = refused.expect("the flood is refused");
    assert!(crate::support::bucket_admits(5, 1, started.elapsed()).contains(&stored), "{stored}");
    assert_eq!(b["error"], "Too many requests, please try again later.");
    assert_eq!(b["retryAfter"].as_u64(), Some(retry_after(&headers)));
    let (_, h) = call(&http, Method::GET, &path, None, &alice).await;
    assert_eq!(h.as_array().unwrap().len(), stored, "the refused one was not stored");
}

#[tokio::test]
async fn cors_on_chat_routes() {
    let server = spawn_server().await;
    let http = server.http();
    for path in ["/users/me", "/auth/login", "/register", "/groups/1/messages", "/friends"] {
        let headers = [
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "authorization,content-type"),
        ];
        let (s, h, _) = http.request_full(Method::OPTIONS, path, b"", &headers).await;
        assert_eq!(s, 204, "{path}");
        assert_eq!(h["access-control-allow-origin"], "*");
        let allowed = h["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");
        assert!(h["access-control-allow-methods"].to_str().unwrap().contains("PATCH"));
        assert!(h.get("access-control-allow-credentials").is_none());
    }
    let (s, h, _) = http.request_full(Method::GET, "/users/me", b"", &[("origin", "https://app.example")]).await;
    assert_eq!((s, h["access-control-allow-origin"].to_str().unwrap()), (401, "*"), "errors are readable too");
}

#[tokio::test]
async fn auth_floods_get_429_with_retry_after() {
    let server = spawn_with(|c| {
        c.auth.requests_per_ip = 3;
        c.auth.failed_logins_per_account = 2;
    })
    .await;
    let http = server.http();
    register(&http, "alice").await;
    let wrong = json!({"username": "alice", "password": "wrong-password"}).to_string();
    for _ in 0..2 {
        assert_eq!(http.request(Method::POST, "/login", wrong.as_bytes(), &[]).await.0, 401);
    }
    // The fourth auth request from this address: over both limits.
    let (s, headers, b) = http.request_full(Method::POST, "/auth/login", wrong.as_bytes(), &[]).await;
    assert_eq!(s, 429, "{b}");
    assert_eq!(b["error"], "Too many requests, please try again later.");
    let secs = retry_after(&headers);
    assert_eq!(b["retryAfter"].as_u64(), Some(secs));
    assert!(secs > 60, "300 per 15 minutes refill one every few minutes at 3: {secs}");
    let body = json!({"username": "bob", "password": "password-123"});
    assert_eq!(
        http.json(Method::POST, "/register", Some(body), None).await.0,
        429,
        "registrations share the allowance"
    );
    assert_eq!(http.get("/health").await.0, 200, "the server is fine");
}

#[tokio::test]
async fn oversized_and_broken_bodies_are_refused() {
    let server = spawn_server().await;
    let http = server.http();
    let alice = register(&http, "alice").await;
    let auth = format!("Bearer {}", alice.token);
    let big = json!({"bio": "x".repeat(100_000)}).to_string();
    let (s, b) = http.request(Method::PATCH, "/users/bio", big.as_bytes(), &[("authorization", auth.as_str())]).await;
    assert_eq!(s, 413, "{b}");
    assert!(b["error"].is_string());
    for body in ["[]", "\"nope\"", "{", "null"] {
        let (s, b) =
            http.request(Method::PATCH, "/users/bio", body.as_bytes(), &[("authorization", auth.as_str())]).await;
        assert_eq!(s, 400, "{body}: {b}");
        assert!(b["error"].is_string());
    }
    assert_eq!(call(&http, Method::GET, "/users/me", None, &alice).await.0, 200);
}
