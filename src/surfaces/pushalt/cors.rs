//! CORS on Push-Alt's routes from the global origin list (SPEC §5): a request from an origin in
//! the list gets `Access-Control-Allow-Origin` with its origin, a preflight from one gets 204
//! with the methods and headers Push-Alt allowed, and a request or preflight from any other
//! origin is refused with 403 before it reaches a route (a browser could not read the answer
//! anyway, and a form post must not get to act). Requests without `Origin` (backends) pass.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::audit;
use crate::server::forwarded::ClientAddr;
use crate::server::state::AppState;

const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
/// Push-Alt's list (its clients may send the last two on a preflight).
const ALLOW_HEADERS: &str = "Content-Type, Authorization, Upgrade, Connection";
/// How long a browser may keep a preflight's answer, in seconds.
const MAX_AGE: &str = "600";

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let allowed = match origin.to_str() {
        Ok(o) => state.origins.allowed(Some(o)).await,
        Err(_) => false,
    };
    if !allowed {
        let client = ClientAddr::of(&req);
        let shown = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        audit::refused(audit::Refusal::OriginRefused, client, &shown, &"not in the global origin list");
        return ApiError::Forbidden("Origin not allowed").into_response();
    }
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        response
    } else {
        next.run(req).await
    };
    add_headers(&mut response, origin);
    response
}

/// Gives an answer made outside the layer (the server's refusals on these paths) the CORS
/// headers the layer would have: when `origin` is in the global list.
pub async fn allow(state: &AppState, origin: Option<HeaderValue>, response: &mut Response) {
    let Some(origin) = origin else { return };
    if let Ok(o) = origin.to_str()
        && state.origins.allowed(Some(o)).await
    {
        add_headers(response, origin);
    }
}

fn add_headers(response: &mut Response, origin: HeaderValue) {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Retry-After"));
}
