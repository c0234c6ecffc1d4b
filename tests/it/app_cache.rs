//! The app cache only moves forward (issue 14, item 2): with the background refresh running as
//! often as it can and other accounts creating apps all the while, a change made through the API
//! is in force on this node before its response returns (a rotated secret is refused by the very
//! next request, a new app connects at once) and no live connection is closed for a deletion that
//! did not happen.

use hyper::Method;
use serde_json::{Value, json};

use crate::support::http::now;
use crate::support::{APP_KEY, Ws, spawn_with};

async fn register(http: &crate::support::Http, name: &str) -> String {
    let body = json!({"username": name, "password": "password-123"});
    let (s, b) = http.json(Method::POST, "/auth/register", Some(body), None).await;
    assert_eq!(s, 201, "{b}");
    b["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn api_changes_are_in_force_before_the_response_and_the_cache_never_goes_back() {
    // The poll runs every millisecond: it races every change below.
    let server = spawn_with(|c| c.server.app_refresh_ms = 1).await;
    let http = server.http();
    let owner = register(&http, "cache-owner").await;
    // A live client of a healthy app, which must stay connected throughout.
    let mut bystander = server.connect().await;
    bystander.subscribe("calm").await;

    // Other accounts churn apps in the background, moving the revision all the time.
    let churn: Vec<_> = (0..3)
        .map(|n| {
            let http = http.clone();
            tokio::spawn(async move {
                let token = register(&http, &format!("churner-{n}")).await;
                for _ in 0..25 {
                    let body = json!({"name": "churn"});
                    let (s, app) = http.json(Method::POST, "/dashboard/apps", Some(body), Some(&token)).await;
                    assert_eq!(s, 201, "{app}");
                    let path = format!("/dashboard/apps/{}", app["id"].as_str().unwrap());
                    assert_eq!(http.json(Method::DELETE, &path, None, Some(&token)).await.0, 200);
                }
            })
        })
        .collect();

    for round in 0..25 {
        // A new app connects at once.
        let (s, app) = http
            .json(Method::POST, "/dashboard/apps", Some(json!({"name": format!("mine-{round}")})), Some(&owner))
            .await;
        assert_eq!(s, 201, "{app}");
        let (id, key) = (app["id"].as_str().unwrap().to_owned(), app["key"].as_str().unwrap().to_owned());
        let mut ws = Ws::connect_established(&server.ws_url(&key)).await;

        // A rotated secret is refused by the very next request; the new one works.
        let old = app["secret"].as_str().unwrap().to_owned();
        let path = format!("/dashboard/apps/{id}/rotate-secret");
        let (s, rotated) = http.json(Method::POST, &path, None, Some(&owner)).await;
        assert_eq!(s, 200, "{rotated}");
        let new = rotated["secret"].as_str().unwrap();
        let events = format!("/apps/{id}/events");
        let body = json!({"name": "e", "channel": "c", "data": "d"}).to_string();
        let (s, b) = http.signed_as(&key, &old, Method::POST, &events, &body, &[], now()).await;
        assert_eq!(s, 401, "round {round}: the replaced secret was accepted: {b}");
        let (s, b) = http.signed_as(&key, new, Method::POST, &events, &body, &[], now()).await;
        assert_eq!(s, 200, "round {round}: the new secret was refused: {b}");

        // The app's own client is still there: nothing closed it for a deletion that did not happen.
        ws.assert_alive().await;
    }
    for task in churn {
        task.await.unwrap();
    }
    bystander.assert_alive().await;
    let (s, b) = http.trigger(json!({"name": "still", "channel": "calm", "data": "here"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(bystander.expect_event("still").await["data"], "here");
    // The default app was never closed: its key still connects.
    let _ = Ws::connect_established(&server.ws_url(APP_KEY)).await;
}

#[tokio::test]
async fn a_disabled_app_is_refused_before_the_response_and_an_older_reload_cannot_undo_it() {
    let server = spawn_with(|c| c.server.app_refresh_ms = 1).await;
    let http = server.http();
    let owner = register(&http, "disabler").await;
    let (_, app) = http.json(Method::POST, "/dashboard/apps", Some(json!({"name": "to-disable"})), Some(&owner)).await;
    let (id, key) = (app["id"].as_str().unwrap().to_owned(), app["key"].as_str().unwrap().to_owned());
    let mut ws = Ws::connect_established(&server.ws_url(&key)).await;
    let path = format!("/dashboard/apps/{id}");
    let (s, b) = http.json(Method::PATCH, &path, Some(json!({"enabled": false})), Some(&owner)).await;
    assert_eq!((s, &b["enabled"]), (200, &Value::Bool(false)));
    assert_eq!(ws.expect_close().await, 4003);
    // Reloads racing on (the poll, and more by hand) never bring the enabled app back.
    for _ in 0..20 {
        let reloads: Vec<_> = (0..4)
            .map(|_| {
                let state = server.state.clone();
                tokio::spawn(async move { state.reload_apps().await.unwrap() })
            })
            .collect();
        for r in reloads {
            r.await.unwrap();
        }
        assert!(!server.state.apps.by_id(&id).unwrap().enabled);
    }
    let mut refused = Ws::connect_raw(&server.ws_url(&key)).await;
    refused.expect_error_and_close(4003).await;
}
