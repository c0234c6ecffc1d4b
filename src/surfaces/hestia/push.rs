//! Push registration (SPEC §6): `PATCH /users/fcm-token {token}` and `PATCH /users/web-push
//! {endpoint, keys:{p256dh, auth}}` (a browser's `subscription.toJSON()`, extra keys ignored)
//! answer `{success:true}`; `GET /users/web-push/vapid-public-key` gives web clients the
//! `applicationServerKey` to subscribe with. The rules live in [`crate::push`].

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Authed, json_body};
use crate::chat::ChatError;
use crate::push::{PushError, Subscription};
use crate::server::state::AppState;
use crate::surfaces::ErrorBody;

impl From<PushError> for ApiError {
    fn from(e: PushError) -> Self {
        match e {
            PushError::Invalid(why) => Self::BadRequest(why),
            PushError::Keys(e) => Self::BadRequest(e.message()),
            PushError::Store(e) => Self::Chat(ChatError::Store(e)),
        }
    }
}

/// Hestia's message for a body without a token.
const NO_TOKEN: &str = "Missing userId or token";
const NO_SUBSCRIPTION: &str = "Missing endpoint or keys";

#[derive(Deserialize, utoipa::ToSchema)]
struct FcmBody {
    token: Option<String>,
}

/// Registers the device's FCM token for push notifications.
#[utoipa::path(
    patch,
    path = "/users/fcm-token",
    tag = "Hestia",
    request_body(content = FcmBody),
    responses(
        (status = 200, description = "Registered.", body = super::Success),
        (status = 400, description = "Missing userId or token (or an invalid one).", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn fcm_token(
    State(state): State<AppState>,
    Authed(me): Authed,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let b: FcmBody = json_body(&headers, body, NO_TOKEN).await?;
    let token = b.token.ok_or(ApiError::BadRequest(NO_TOKEN))?;
    state.push.register_fcm(me, &token).await?;
    Ok(Json(json!({ "success": true })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = WebPushKeys)]
struct Keys {
    p256dh: Option<String>,
    auth: Option<String>,
}

/// A browser's `PushSubscription.toJSON()` (other keys are ignored).
#[derive(Deserialize, utoipa::ToSchema)]
struct WebPushBody {
    endpoint: Option<String>,
    keys: Option<Keys>,
}

/// Registers a browser's Web Push subscription.
#[utoipa::path(
    patch,
    path = "/users/web-push",
    tag = "Hestia",
    request_body(content = WebPushBody),
    responses(
        (status = 200, description = "Registered.", body = super::Success),
        (status = 400, description = "Missing endpoint or keys (or invalid ones).", body = ErrorBody),
        (status = 401, description = "No token provided.", body = ErrorBody),
        (status = 403, description = "An invalid or expired token (or a deleted account's).", body = ErrorBody),
        (status = 413, description = "The body is over the route's limit.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn web_push(
    State(state): State<AppState>,
    Authed(me): Authed,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let b: WebPushBody = json_body(&headers, body, NO_SUBSCRIPTION).await?;
    let (Some(endpoint), Some(Keys { p256dh: Some(p256dh), auth: Some(auth) })) = (b.endpoint, b.keys) else {
        return Err(ApiError::BadRequest(NO_SUBSCRIPTION));
    };
    state.push.register_web_push(me, &Subscription { endpoint, p256dh, auth }).await?;
    Ok(Json(json!({ "success": true })))
}

/// `{publicKey}`: the VAPID key, base64url (public; no token needed).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes what `vapid_public_key` answers.
struct VapidKey {
    /// The `applicationServerKey` to subscribe with (base64url).
    #[schema(rename = "publicKey")]
    public_key: String,
}

/// `{publicKey}`: the VAPID key, base64url (public; no token needed).
#[utoipa::path(
    get,
    path = "/users/web-push/vapid-public-key",
    tag = "Hestia",
    responses(
        (status = 200, description = "The key.", body = VapidKey),
    ),
)]
pub async fn vapid_public_key(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "publicKey": state.push.vapid_public_key() }))
}
