//! `/notifmoo.js`, the script-tag client (SPEC §4), embedded in the binary so a page can load it
//! from the server it connects to. Its source sits beside this file and is tested in a real
//! browser by `tests/browser/`.

use axum::http::header;
use axum::response::IntoResponse;

/// The client's source, compiled in.
pub const NOTIFMOO_JS: &str = include_str!("notifmoo.js");

/// `GET /notifmoo.js`. Cached briefly: a page picks up a new server version within minutes.
#[utoipa::path(
    get,
    path = "/notifmoo.js",
    tag = "Notif",
    responses((status = 200, description = "Notif's script-tag client.", content_type = "application/javascript", body = String)),
)]
pub async fn serve() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        NOTIFMOO_JS,
    )
}
