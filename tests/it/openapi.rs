//! `/openapi.json` describes every route the router serves, with every method it answers, and
//! `/docs` renders it offline.

use std::collections::{BTreeMap, BTreeSet};

use hyper::Method;
use serde_json::Value;

use crate::support::spawn_server;

/// The paths of the server's route table, read from the router itself (its `Debug` lists each
/// route's path; the fallback's own table after them is not routes), in OpenAPI's spelling:
/// `{*rest}` is `{rest}`.
fn served_paths(router: &switchboard::axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let start = debug.find("path_router:").expect("the router's Debug shows its path router");
    let end = debug.find("fallback_router:").expect("and its fallback router after it");
    let mut paths = BTreeSet::new();
    let mut rest = &debug[start..end];
    while let Some(at) = rest.find("RouteId(") {
        rest = &rest[at..];
        let Some(open) = rest.find(": \"") else { break };
        let path_start = &rest[open + 3..];
        let end = path_start.find('"').unwrap();
        let path = &path_start[..end];
        if !path.contains("__private__axum") {
            paths.insert(path.replace("{*", "{"));
        }
        rest = &path_start[end..];
    }
    paths
}

/// A concrete path for a template: every parameter filled with `x`.
fn concrete(template: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in template.chars() {
        match c {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                out.push('x');
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

async fn document(server: &crate::support::TestServer) -> Value {
    let (status, doc) = server.http().get("/openapi.json").await;
    assert_eq!(status, 200);
    doc
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_has_every_served_path() {
    let server = spawn_server().await;
    let doc = document(&server).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);
    assert_eq!(doc["info"]["title"], "Switchboard");
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let served = served_paths(&switchboard::server::builtin_router(server.state.clone()));
    assert!(served.len() > 60, "the route table was read: {served:?}");
    let missing: Vec<_> = served.difference(&documented).collect();
    assert!(missing.is_empty(), "routes without documentation: {missing:?}");
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(unserved.is_empty(), "documented paths no route serves: {unserved:?}");
    for scheme in ["pusher_signature", "bearer", "notif_app_key", "pushalt_app_key"] {
        assert!(doc["components"]["securitySchemes"][scheme].is_object(), "{scheme}");
    }
    // Every operation has a tag and a response, and every reference resolves.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &piece[..piece.find('"').unwrap()];
        assert!(schemas.contains_key(name), "dangling reference to {name}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{method} {path} has no tag");
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no response");
        }
    }
    server.stop().await;
}

/// A method the document does not list for a path is one the server does not serve there: 405
/// (the Engine.IO endpoints answer Engine.IO's own 400 to any other method, as Node's server).
#[tokio::test]
async fn every_method_a_route_answers_is_documented() {
    let server = spawn_server().await;
    let doc = document(&server).await;
    let mut by_path: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        by_path.insert(path.clone(), item.as_object().unwrap().keys().cloned().collect());
    }
    let served = served_paths(&switchboard::server::builtin_router(server.state.clone()));
    let engine_io = ["/ws/", "/socket.io/"];
    let http = server.http();
    for path in &served {
        let documented = &by_path[path];
        for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            if documented.contains(&method.as_str().to_lowercase()) {
                continue;
            }
            let (status, body) = http.request(method.clone(), &concrete(path), b"", &[]).await;
            if engine_io.contains(&path.as_str()) {
                assert!(status == 400 && body["code"].is_number(), "{method} {path}: {status} {body}");
            } else {
                assert_eq!(status, 405, "{method} {path} is served but not documented: {body}");
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn the_docs_page_renders_the_document_without_other_sites() {
    let server = spawn_server().await;
    let (status, headers, page) = server.http().request_full(Method::GET, "/docs", b"", &[]).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = page.as_str().unwrap();
    assert!(page.contains("fetch(\"openapi.json\")"));
    // Offline: nothing is loaded from another host.
    for outside in ["http://", "https://", "//cdn", "src=\"//"] {
        assert!(!page.contains(outside), "the page refers to {outside}");
    }
    server.stop().await;
}
