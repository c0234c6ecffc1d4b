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
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}
