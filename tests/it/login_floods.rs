//! Login floods (issue 14, items 1 and 3): the login limiters are bounded and swept, names and
//! passwords longer than any account's are refused before anything is stored or hashed, and
//! password hashing runs under a concurrency cap whose overflow is a 503 with `Retry-After`,
//! never a 500, while `/health` keeps answering.

use std::time::Duration;

use hyper::Method;
use serde_json::json;

use crate::support::spawn_with;

#[tokio::test]
async fn names_and_passwords_past_their_lengths_store_nothing() {
    let server = spawn_with(|_| {}).await;
    let http = server.http();
    let before = server.state.accounts.limiter_entries();
    let long_name = "n".repeat(256);
    let long_password = "p".repeat(129);
    for i in 0..40 {
        let name = format!("{long_name}{i}");
        for body in [
            json!({"username": name, "password": "password-123"}),
            json!({"email": format!("{name}@example.com"), "password": "password-123"}),
            json!({"username": format!("user{i}"), "password": long_password}),
        ] {
            let (s, b) = http.json(Method::POST, "/auth/login", Some(body), None).await;
            assert_eq!((s, b), (401, json!({"error": "Invalid credentials."})));
        }
    }
    // Only the one per-address bucket: no per-name bucket for names no account can have.
    assert_eq!(server.state.accounts.limiter_entries(), before + 1);
}

#[tokio::test]
async fn failed_logins_make_buckets_that_the_sweep_forgets() {
    // 600 a minute: a bucket refills in a tenth of a second.
    let server = spawn_with(|c| {
        c.auth.failed_logins_per_account = 600;
        c.auth.window_secs = 60;
    })
    .await;
    let http = server.http();
    for i in 0..50 {
        let body = json!({"username": format!("nobody-{i}"), "password": "wrong-password"});
        assert_eq!(http.json(Method::POST, "/auth/login", Some(body), None).await.0, 401);
    }
    assert!(server.state.accounts.limiter_entries() >= 50, "one bucket per name tried");
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.state.accounts.sweep();
    // The per-address bucket (1000 a minute in tests) may still be refilling; no name is left.
    assert!(server.state.accounts.limiter_entries() <= 1, "{}", server.state.accounts.limiter_entries());
}

#[tokio::test]
async fn failed_logins_per_name_are_limited_and_a_success_resets_them() {
    let server = spawn_with(|c| {
        c.auth.failed_logins_per_account = 3;
        c.auth.window_secs = 60;
    })
    .await;
    let http = server.http();
    let body = json!({"username": "limited", "password": "password-123"});
    assert_eq!(http.json(Method::POST, "/auth/register", Some(body.clone()), None).await.0, 201);
    let wrong = json!({"username": "limited", "password": "not-the-password"});
    for _ in 0..2 {
        assert_eq!(http.json(Method::POST, "/auth/login", Some(wrong.clone()), None).await.0, 401);
    }
    // A success gives the name its attempts back.
    assert_eq!(http.json(Method::POST, "/auth/login", Some(body.clone()), None).await.0, 200);
    for _ in 0..3 {
        assert_eq!(http.json(Method::POST, "/auth/login", Some(wrong.clone()), None).await.0, 401);
    }
    let (status, headers, b) = http.request_full(Method::POST, "/auth/login", wrong.to_string().as_bytes(), &[]).await;
    assert_eq!(status, 429, "{b}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(b["retryAfter"], retry);
    assert!((1..=20).contains(&retry), "three a minute refill one in 20 s: {retry}");
}

#[tokio::test]
async fn password_checks_past_the_cap_get_503_and_the_server_stays_live() {
    let server = spawn_with(|_| {}).await;
    let http = server.http();
    // 120 failed logins at once: each is an argon2id verify (19 MiB, tens of milliseconds).
    let attempts: Vec<_> = (0..120)
        .map(|i| {
            let http = http.clone();
            tokio::spawn(async move {
                let body = json!({"username": format!("storm-{i}"), "password": "wrong-password"});
                http.request_full(Method::POST, "/auth/login", body.to_string().as_bytes(), &[]).await
            })
        })
        .collect();
    // /health answers while they run.
    let (status, body) = http.get("/health").await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")));
    let (mut refused, mut judged) = (0, 0);
    for attempt in attempts {
        let (status, headers, body) = attempt.await.unwrap();
        match status {
            401 => {
                assert_eq!(body, json!({"error": "Invalid credentials."}));
                judged += 1;
            }
            503 => {
                assert_eq!(headers["retry-after"], "1");
                assert_eq!(body, json!({"error": "Server busy, please try again shortly."}));
                refused += 1;
            }
            other => panic!("a login under load got {other}: {body}"),
        }
    }
    assert!(judged > 0, "some were checked");
    assert!(refused > 0, "120 at once is more than the cap and its queue");
    // The gate lets everyone in again once the storm is over.
    let body = json!({"username": "after-the-storm", "password": "wrong-password"});
    assert_eq!(http.json(Method::POST, "/auth/login", Some(body), None).await.0, 401);
}
