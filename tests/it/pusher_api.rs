//! The signed HTTP API: every endpoint, `info` attributes, exclusion, and every error status.

use hyper::Method;
use serde_json::{Value, json};

use crate::support::http::now;
use crate::support::ws::data;
use crate::support::{APP_ID, APP_KEY, APP_SECRET, spawn_server};

fn events_path() -> String {
    format!("/apps/{APP_ID}/events")
}

#[tokio::test]
async fn trigger_to_many_channels_with_info_and_exclusion() {
    let server = spawn_server().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    for (ws, user) in [(&mut a, "ua"), (&mut b, "ub")] {
        ws.subscribe("c1").await;
        ws.subscribe_presence("presence-p", user, Value::Null).await;
    }
    a.expect_event("pusher_internal:member_added").await;
    let body = json!({
        "name": "e", "channels": ["c1", "presence-p"], "data": "d", "socket_id": a.socket_id,
        "info": "user_count,subscription_count",
    });
    let (status, res) = server.http().trigger(body).await;
    assert_eq!(status, 200);
    assert_eq!(
        res,
        json!({"channels": {
            "c1": {"subscription_count": 2},
            "presence-p": {"subscription_count": 2, "user_count": 2},
        }})
    );
    assert_eq!(b.recv().await, json!({"event": "e", "channel": "c1", "data": "d"}));
    assert_eq!(b.recv().await, json!({"event": "e", "channel": "presence-p", "data": "d"}));
    // The excluded socket got neither: its next frame is a later event.
    server.assert_next_is_marker(&mut a, "c1").await;
}

#[tokio::test]
async fn batch_events() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    ws.subscribe("b1").await;
    ws.subscribe("b2").await;
    let body = json!({"batch": [
        {"name": "one", "channel": "b1", "data": "1"},
        {"name": "two", "channel": "b2", "data": "2", "info": "subscription_count"},
    ]})
    .to_string();
    let (status, res) = server.http().signed(Method::POST, &format!("/apps/{APP_ID}/batch_events"), &body, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(res, json!({"batch": [{}, {"subscription_count": 1}]}));
    assert_eq!(ws.recv().await["event"], "one");
    assert_eq!(ws.recv().await["event"], "two");

    let eleven: Vec<Value> = (0..11).map(|i| json!({"name": "x", "channel": "b1", "data": i.to_string()})).collect();
    let (status, res) = server
        .http()
        .signed(Method::POST, &format!("/apps/{APP_ID}/batch_events"), &json!({"batch": eleven}).to_string(), &[])
        .await;
    assert_eq!(status, 400);
    assert!(res["error"].as_str().unwrap().contains("10"));
    // Nothing of a refused batch is delivered.
    let bad = json!({"batch": [{"name": "ok", "channel": "b1", "data": "1"}, {"name": "bad", "channel": "bad channel", "data": "1"}]});
    let (status, _) =
        server.http().signed(Method::POST, &format!("/apps/{APP_ID}/batch_events"), &bad.to_string(), &[]).await;
    assert_eq!(status, 400);
    server.assert_next_is_marker(&mut ws, "b1").await;
}

#[tokio::test]
async fn channel_queries() {
    let server = spawn_server().await;
    let mut a = server.connect().await;
    a.subscribe("news").await;
    a.subscribe("sport").await;
    a.subscribe_presence("presence-lobby", "alice", Value::Null).await;
    let mut b = server.connect().await;
    b.subscribe("news").await;
    b.subscribe_presence("presence-lobby", "bob", Value::Null).await;
    let http = server.http();
    let path = format!("/apps/{APP_ID}/channels");

    let (status, all) = http.signed(Method::GET, &path, "", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(all, json!({"channels": {"news": {}, "presence-lobby": {}, "sport": {}}}));

    let filtered =
        http.signed(Method::GET, &path, "", &[("filter_by_prefix", "presence-"), ("info", "user_count")]).await;
    assert_eq!(filtered, (200, json!({"channels": {"presence-lobby": {"user_count": 2}}})));

    let counted = http.signed(Method::GET, &path, "", &[("info", "subscription_count")]).await;
    assert_eq!(
        counted,
        (
            200,
            json!({"channels": {
                "news": {"subscription_count": 2},
                "presence-lobby": {"subscription_count": 2},
                "sport": {"subscription_count": 1},
            }})
        )
    );

    let (status, err) = http.signed(Method::GET, &path, "", &[("info", "user_count")]).await;
    assert_eq!(status, 400, "user_count needs a presence- prefix");
    assert!(err["error"].is_string());

    let (status, one) = http.signed(Method::GET, &format!("{path}/news"), "", &[("info", "subscription_count")]).await;
    assert_eq!((status, one), (200, json!({"occupied": true, "subscription_count": 2})));
    let (_, p) = http
        .signed(Method::GET, &format!("{path}/presence-lobby"), "", &[("info", "user_count,subscription_count")])
        .await;
    assert_eq!(p, json!({"occupied": true, "user_count": 2, "subscription_count": 2}));
    let (_, empty) = http.signed(Method::GET, &format!("{path}/nobody-here"), "", &[]).await;
    assert_eq!(empty, json!({"occupied": false}));
    let (status, _) = http.signed(Method::GET, &format!("{path}/news"), "", &[("info", "user_count")]).await;
    assert_eq!(status, 400);

    let (_, users) = http.signed(Method::GET, &format!("{path}/presence-lobby/users"), "", &[]).await;
    assert_eq!(users, json!({"users": [{"id": "alice"}, {"id": "bob"}]}));
    let (status, _) = http.signed(Method::GET, &format!("{path}/news/users"), "", &[]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn cache_attribute_returns_the_cached_event_and_its_ttl() {
    let server = spawn_server().await;
    let http = server.http();
    let path = format!("/apps/{APP_ID}/channels");

    // Nothing cached yet: null, whether or not anyone is subscribed.
    let (status, none) = http.signed(Method::GET, &format!("{path}/cache-price"), "", &[("info", "cache")]).await;
    assert_eq!((status, none), (200, json!({"occupied": false, "cache": null})));

    for data in [json!("{\"eur\":1}"), json!({"eur": 2})] {
        assert_eq!(http.trigger(json!({"name": "tick", "channel": "cache-price", "data": data})).await.0, 200);
    }
    let mut ws = server.connect().await;
    ws.subscribe("cache-price").await;
    assert_eq!(ws.recv().await["data"], "{\"eur\":2}");

    let (status, got) =
        http.signed(Method::GET, &format!("{path}/cache-price"), "", &[("info", "cache,subscription_count")]).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["occupied"], true);
    assert_eq!(got["subscription_count"], 1);
    assert_eq!(got["cache"]["event"], "tick");
    assert_eq!(got["cache"]["data"], "{\"eur\":2}", "the data as subscribers receive it");
    let ttl = got["cache"]["ttl"].as_u64().unwrap_or_default();
    assert!((1790..=1800).contains(&ttl), "30 minutes less the test's time: {ttl}");

    // Only a cache channel has a cache; lists and triggers have no such attribute.
    let (status, err) = http.signed(Method::GET, &format!("{path}/price"), "", &[("info", "cache")]).await;
    assert_eq!(status, 400, "{err}");
    assert!(err["error"].is_string());
    let (status, _) = http.signed(Method::GET, &path, "", &[("info", "cache")]).await;
    assert_eq!(status, 400);
    let (status, _) = http
        .signed(
            Method::POST,
            &events_path(),
            &json!({"name": "e", "channel": "cache-price", "data": "d", "info": "cache"}).to_string(),
            &[],
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn event_names_reserve_pusher_and_count_characters() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    ws.subscribe("room").await;
    let http = server.http();
    // As Pusher: the `pusher` namespace is the protocol's; nothing reaches the subscriber.
    for name in ["pusher:member_added", "pusher_internal:subscription_succeeded", "pusher-notification"] {
        let (status, err) = http.trigger(json!({"name": name, "channel": "room", "data": "x"})).await;
        assert_eq!(status, 400, "{name}: {err}");
        assert!(err["error"].as_str().is_some_and(|e| e.contains("pusher")), "{err}");
        let (status, _) = http
            .signed(
                Method::POST,
                &format!("/apps/{APP_ID}/batch_events"),
                &json!({"batch": [{"name": name, "channel": "room", "data": "x"}]}).to_string(),
                &[],
            )
            .await;
        assert_eq!(status, 400, "batch {name}");
    }
    server.assert_next_is_marker(&mut ws, "room").await;

    // 200 characters, however many bytes they take; 201 is too long.
    let long = "é".repeat(200);
    let (status, _) = http.trigger(json!({"name": long, "channel": "room", "data": "x"})).await;
    assert_eq!(status, 200);
    assert_eq!(ws.recv().await["event"], long.as_str());
    let (status, _) = http.trigger(json!({"name": "é".repeat(201), "channel": "room", "data": "x"})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn post_parameters_may_come_in_the_query_string() {
    let server = spawn_server().await;
    let mut a = server.connect().await;
    a.subscribe("qa").await;
    let mut b = server.connect().await;
    b.subscribe("qb").await;
    let http = server.http();
    let params = [
        ("name", "q-event"),
        ("data", "hi"),
        ("channels[]", "qa"),
        ("channels[]", "qb"),
        ("info", "subscription_count"),
    ];
    let (status, body) = http.signed(Method::POST, &events_path(), "", &params).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"channels": {"qa": {"subscription_count": 1}, "qb": {"subscription_count": 1}}}));
    for ws in [&mut a, &mut b] {
        let ev = ws.recv().await;
        assert_eq!((ev["event"].as_str(), ev["data"].as_str()), (Some("q-event"), Some("hi")));
    }
    // The JSON body wins where both name a parameter.
    let body = json!({"name": "from-body", "channel": "qa", "data": "b"}).to_string();
    let (status, _) = http.signed(Method::POST, &events_path(), &body, &[("name", "from-query")]).await;
    assert_eq!(status, 200);
    assert_eq!(a.recv().await["event"], "from-body");
}

#[tokio::test]
async fn foreign_socket_ids_empty_body_md5_and_json_405() {
    let server = spawn_server().await;
    let http = server.http();
    // A socket_id of Pusher's shape that no connection here can have excludes nobody.
    let mut ws = server.connect().await;
    ws.subscribe("s").await;
    let (status, _) =
        http.trigger(json!({"name": "e", "channel": "s", "data": "x", "socket_id": "4294967296.1"})).await;
    assert_eq!(status, 200);
    assert_eq!(ws.recv().await["event"], "e");
    let (status, _) = http.trigger(json!({"name": "e", "channel": "s", "data": "x", "socket_id": "1.x"})).await;
    assert_eq!(status, 400);

    // body_md5 is checked whenever it is given, also for an empty body.
    let path = format!("/apps/{APP_ID}/channels");
    let (status, err) = http.signed(Method::GET, &path, "", &[("body_md5", "abc")]).await;
    assert_eq!(status, 401, "{err}");
    let (status, _) = http.signed(Method::GET, &path, "", &[("body_md5", "d41d8cd98f00b204e9800998ecf8427e")]).await;
    assert_eq!(status, 200);

    // A wrong method is a JSON 405 that says what is allowed.
    let (status, headers, body) = http.request_full(Method::PUT, &events_path(), b"{}", &[]).await;
    assert_eq!(status, 405);
    assert_eq!(headers.get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn error_statuses() {
    let server = spawn_server().await;
    let http = server.http();
    let body = json!({"name": "e", "channel": "c", "data": "d"}).to_string();
    let path = events_path();

    // 401: bad signature, stale or future timestamp, wrong key, wrong version, body_md5, missing.
    let (s, e) = http.signed_as(APP_KEY, "wrong-secret", Method::POST, &path, &body, &[], now()).await;
    assert_eq!(s, 401, "{e}");
    assert!(e["error"].is_string());
    let (s, _) = http.signed_as(APP_KEY, APP_SECRET, Method::POST, &path, &body, &[], now() - 601).await;
    assert_eq!(s, 401);
    let (s, _) = http.signed_as(APP_KEY, APP_SECRET, Method::POST, &path, &body, &[], now() + 601).await;
    assert_eq!(s, 401);
    let (s, _) = http.signed_as("other-key", APP_SECRET, Method::POST, &path, &body, &[], now()).await;
    assert_eq!(s, 401);
    let q = switchboard::auth::pusher::sign_query(APP_KEY, APP_SECRET, "POST", &path, body.as_bytes(), &[], now());
    let (s, _) = http.request(Method::POST, &format!("{path}?{q}"), b"{\"name\":\"tampered\"}", &[]).await;
    assert_eq!(s, 401);
    let (s, _) = http.request(Method::POST, &path, body.as_bytes(), &[]).await;
    assert_eq!(s, 401);
    let q2 = q.replace("auth_version=1.0", "auth_version=2.0");
    let (s, _) = http.request(Method::POST, &format!("{path}?{q2}"), body.as_bytes(), &[]).await;
    assert_eq!(s, 401);
    // body_md5 is required with a body: validly signed without one, the request is refused.
    let no_md5 = switchboard::auth::pusher::sign_query(APP_KEY, APP_SECRET, "POST", &path, b"", &[], now());
    let (s, e) = http.request(Method::POST, &format!("{path}?{no_md5}"), body.as_bytes(), &[]).await;
    assert_eq!(s, 401, "{e}");

    // 404: unknown app.
    let (s, e) = http.signed(Method::POST, "/apps/no-such-app/events", &body, &[]).await;
    assert_eq!((s, e["error"].is_string()), (404, true));

    // 400: bad JSON, missing fields, bad channel names, too many channels, bad socket_id.
    for bad in [
        "not json".to_owned(),
        json!({"channel": "c", "data": "d"}).to_string(),
        json!({"name": "e", "data": "d"}).to_string(),
        json!({"name": "e", "channel": "c"}).to_string(),
        json!({"name": "e", "channel": "bad name", "data": "d"}).to_string(),
        json!({"name": "e", "channel": "x".repeat(165), "data": "d"}).to_string(),
        json!({"name": "x".repeat(201), "channel": "c", "data": "d"}).to_string(),
        json!({"name": "e", "channels": (0..101).map(|i| format!("c{i}")).collect::<Vec<_>>(), "data": "d"})
            .to_string(),
        json!({"name": "e", "channels": [], "data": "d"}).to_string(),
        json!({"name": "e", "channel": "c", "data": "d", "socket_id": "nope"}).to_string(),
        json!({"name": "e", "channel": "c", "data": "d", "info": "bogus"}).to_string(),
        json!([1, 2]).to_string(),
    ] {
        let (s, e) = http.signed(Method::POST, &path, &bad, &[]).await;
        assert_eq!(s, 400, "{bad} -> {e}");
        assert!(e["error"].is_string(), "{e}");
    }
    // 100 channels is fine.
    let hundred = json!({"name": "e", "channels": (0..100).map(|i| format!("c{i}")).collect::<Vec<_>>(), "data": "d"});
    assert_eq!(http.trigger(hundred).await.0, 200);

    // 413: data over the app's limit (10 KB).
    let (s, e) = http.trigger(json!({"name": "e", "channel": "c", "data": "x".repeat(10 * 1024 + 1)})).await;
    assert_eq!(s, 413, "{e}");
    assert_eq!(http.trigger(json!({"name": "e", "channel": "c", "data": "x".repeat(10 * 1024)})).await.0, 200);

    // 403: disabled app (with a good signature).
    switchboard::apps::set_enabled(&server.state.store, APP_ID, false).await.unwrap();
    server.refresh_apps().await;
    let (s, _) = http.signed(Method::POST, &path, &body, &[]).await;
    assert_eq!(s, 403);
    switchboard::apps::set_enabled(&server.state.store, APP_ID, true).await.unwrap();
    server.refresh_apps().await;

    // 503: broker down; nothing is delivered, and it recovers.
    let mut ws = server.connect().await;
    ws.subscribe("c").await;
    server.broker.set_down(true);
    let (s, e) = http.signed(Method::POST, &path, &body, &[]).await;
    assert_eq!(s, 503, "{e}");
    assert!(e["error"].is_string(), "{e}");
    // It recovers, and the refused event was never delivered: the next frame is a later one.
    server.broker.set_down(false);
    server.assert_next_is_marker(&mut ws, "c").await;
}

#[tokio::test]
async fn api_data_survives_round_trip_exactly() {
    let server = spawn_server().await;
    let mut ws = server.connect().await;
    ws.subscribe("u").await;
    let tricky = "quotes \" backslash \\ newline \n unicode é 🚀 </script>";
    assert_eq!(server.http().trigger(json!({"name": "e", "channel": "u", "data": tricky})).await.0, 200);
    let ev = ws.recv().await;
    assert_eq!(ev["data"], tricky);
    assert_eq!(data(&ev), tricky);
}

#[tokio::test]
async fn api_rate_limit_is_429_with_retry_after() {
    const RATE: u32 = 3;
    let server = spawn_server().await;
    crate::support::update_app(&server, APP_ID, |s| s.limits.api_requests_per_second = RATE).await;
    let http = server.http();
    let channels = format!("/apps/{APP_ID}/channels");
    let trigger = json!({"name": "e", "channel": "c", "data": "d"}).to_string();

    // Triggers and channel queries alternate: they draw on one bucket per app, so a quick run
    // admits exactly RATE of them in all, then refuses.
    let started = std::time::Instant::now();
    let mut admitted = 0;
    let (headers, body) = loop {
        assert!(admitted <= 10 * RATE as usize, "never refused after {admitted} requests");
        let (method, path, body) = match admitted % 2 {
            0 => ("POST", events_path(), trigger.as_str()),
            _ => ("GET", channels.clone(), ""),
        };
        let q = switchboard::auth::pusher::sign_query(APP_KEY, APP_SECRET, method, &path, body.as_bytes(), &[], now());
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, headers, res) = http.request_full(method, &format!("{path}?{q}"), body.as_bytes(), &[]).await;
        match status {
            200 => admitted += 1,
            429 => break (headers, res),
            other => panic!("{path}: {other} {res}"),
        }
    };
    let window = crate::support::bucket_admits(RATE, RATE, started.elapsed());
    assert!(window.contains(&admitted), "admitted {admitted}, the bucket allows {window:?}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("Too many requests")), "{body}");
    // A token comes back within 1/RATE s: the wait in whole seconds is 1.
    let wait = crate::support::retry_after(&headers);
    assert_eq!(wait, 1);
    // And it is honest: after that wait a request is admitted again.
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    let (status, res) = http.trigger(json!({"name": "e", "channel": "c", "data": "d"})).await;
    assert_eq!(status, 200, "{res}");
}
