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

#[derive(Deserialize)]
struct FcmBody {
    token: Option<String>,
}

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

#[derive(Deserialize)]
struct Keys {
    p256dh: Option<String>,
    auth: Option<String>,
}

#[derive(Deserialize)]
struct WebPushBody {
    endpoint: Option<String>,
    keys: Option<Keys>,
}

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
pub async fn vapid_public_key(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "publicKey": state.push.vapid_public_key() }))
}
