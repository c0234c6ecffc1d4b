//! CORS for the chat routes, as Hestia's `cors()`: any origin (`*`), no credentials. A
//! preflight gets 204 naming the methods and the request headers clients send; `*` in
//! `Access-Control-Allow-Headers` would not cover `Authorization` (SPEC §6).

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::server::state::AppState;

const METHODS: HeaderValue = HeaderValue::from_static("GET, HEAD, PUT, PATCH, POST, DELETE");
const HEADERS: HeaderValue = HeaderValue::from_static("Authorization, Content-Type, Content-Length, X-Requested-With");

/// `routes` with CORS: the layer wraps every route, its 405 answer included (set here, since
/// one set later by the outer router would not be wrapped), so that a preflight for a path
/// whose methods do not include OPTIONS still gets its 204.
pub fn with_cors(routes: Router<AppState>) -> Router<AppState> {
    routes.method_not_allowed_fallback(method_not_allowed).layer(middleware::from_fn(cors))
}

async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(serde_json::json!({ "error": "method not allowed" }))).into_response()
}

/// Middleware: answers preflights itself, and marks every other answer as readable from any
/// origin.
pub async fn cors(req: Request, next: Next) -> Response {
    if req.method() == Method::OPTIONS {
        let mut res = StatusCode::NO_CONTENT.into_response();
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, METHODS);
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HEADERS);
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        return res;
    }
    let mut res = next.run(req).await;
    allow_any_origin(&mut res);
    res
}

/// Marks `res` as readable from any origin.
pub fn allow_any_origin(res: &mut Response) {
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
}

/// The chat surface's path prefixes (SPEC §6); `/socket.io` is the chat socket's only when
/// the chat is served there ([`is_socket_path`]).
const PREFIXES: [&str; 6] = ["/auth", "/users", "/friends", "/groups", "/uploads", "/socket.io"];
/// Hestia's root aliases of `/auth/*`.
const ALIASES: [&str; 3] = ["/register", "/login", "/status"];

/// Whether `path` belongs to the chat surface, so that answers given outside its router (the
/// fallback 404, admission's 429 / 503, the deadline's 408) carry its CORS too: a browser
/// could not read them otherwise.
pub fn is_chat_path(path: &str) -> bool {
    ALIASES.contains(&path)
        || PREFIXES.iter().any(|p| path.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
}

/// Whether `path` is the Socket.IO endpoint's, which a program's setup may serve instead.
pub fn is_socket_path(path: &str) -> bool {
    path == "/socket.io" || path.starts_with("/socket.io/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_paths_are_the_prefixes_and_aliases() {
        for p in [
            "/auth",
            "/auth/login",
            "/users/x/y",
            "/friends",
            "/groups/1",
            "/uploads/avatars/a",
            "/socket.io/",
            "/register",
            "/login",
            "/status",
        ] {
            assert!(is_chat_path(p), "{p}");
        }
        for p in ["/", "/usersx", "/apps/1/events", "/api/x", "/register/x", "/statusz", "/metrics"] {
            assert!(!is_chat_path(p), "{p}");
        }
        assert!(is_socket_path("/socket.io/") && !is_socket_path("/socket.iox"));
    }
}
