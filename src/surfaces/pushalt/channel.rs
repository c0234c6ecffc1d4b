//! `POST /api/channel/auth` (a token to join one channel, for an app's backend) and the admin's
//! view of the tokens that have not expired (`/api/channel/channels`, `/api/channel/{id}`),
//! which never shows a token again.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use serde::Deserialize;
use serde_json::{Value, json};

use super::caller::Admin;
use super::credentials::{self, Proof};
use super::error::text;
use super::input::{self, IdPath, Seconds, Text};
use super::{ApiError, limit, ok};
use crate::core::ChannelName;
use crate::server::forwarded::ClientAddr;
use crate::server::state::AppState;
use crate::store::{self, now_ms, tokens::ChannelTokenRecord};

#[derive(Deserialize)]
pub struct AuthBody {
    app_id: Option<Text>,
    app_key: Option<String>,
    channel_name: Option<String>,
    expires_in_seconds: Option<Seconds>,
}

/// `{app_id, app_key, channel_name, expires_in_seconds?}` → the token, the event name to listen
/// to, and the row. Every credential failure is 401 with Push-Alt's text.
pub async fn auth(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let signed = credentials::signed_head(&state, client, &method, &uri)?;
    let bytes = crate::surfaces::read_body(&headers, body, limit::SMALL).await?;
    let b: AuthBody = input::parse(&bytes)?;
    let (Some(Text(app_id)), Some(channel_name)) = (b.app_id, b.channel_name) else {
        return Err(ApiError::bad("app_id and channel_name are required"));
    };
    let app = state.apps.by_id(&app_id).ok_or_else(|| ApiError::unauthorized(text::WORKSPACE_NOT_FOUND))?;
    credentials::verify(&app, &Proof::of(signed.as_ref(), b.app_key.as_deref()), &bytes, client)?;
    if !app.enabled {
        return Err(ApiError::unauthorized(text::WORKSPACE_DEACTIVATED));
    }
    let channel = ChannelName::parse(&channel_name).map_err(|e| ApiError::bad(format!("Invalid channel_name: {e}")))?;
    state.api_limits.per_second(&*app.id, app.limits().api_requests_per_second).map_err(ApiError::RateLimited)?;
    let ttl = b.expires_in_seconds.map_or(0, |s| s.0);
    let issued = state.channel_tokens.issue(&app, &channel, ttl).await?;
    let mut data = row_json(&issued.record);
    data["token"] = json!(issued.token.expose());
    Ok(ok(json!({
        "token": issued.token.expose(),
        "message_listen_name": super::socketio::event_name(app.number, channel.as_str(), "message"),
        "message": "Channel created",
        "data": data,
    })))
}

/// A token's row as Push-Alt showed it, without the token: `workspace_id` is the app's number.
fn row_json(r: &ChannelTokenRecord) -> Value {
    json!({
        "id": r.id,
        "workspace_id": r.app_number,
        "channel_name": r.channel,
        "created_at": input::text_time(r.created_at),
        "expires_at": input::text_time(r.expires_at),
    })
}

/// Most rows one page may ask for.
const MAX_TAKE: i64 = 100;

/// `GET /api/channel/channels?page=&take=` (admin): unexpired tokens of every workspace, newest
/// first, `hasMore` and `message: null` as Push-Alt answered.
pub async fn list(State(state): State<AppState>, Admin(_): Admin, uri: Uri) -> Result<Json<Value>, ApiError> {
    let page = input::query_number(uri.query(), "page", 1, 1..=1_000_000)?;
    let take = input::query_number(uri.query(), "take", 10, 1..=MAX_TAKE)?;
    let offset = (page - 1) * take;
    let (rows, total) = state.store.channel_tokens_page(now_ms(), take, offset).await?;
    let data: Vec<Value> = rows.iter().map(row_json).collect();
    Ok(ok(json!({ "data": data, "hasMore": offset + take < total, "message": Value::Null })))
}

/// `GET /api/channel/{id}` (admin): one unexpired token's row with its workspace's name.
pub async fn view(State(state): State<AppState>, Admin(_): Admin, IdPath(id): IdPath) -> Result<Json<Value>, ApiError> {
    let record = match state.store.channel_token(id, now_ms()).await {
        Ok(r) => r,
        Err(store::Error::NotFound) => return Err(ApiError::not_found("Channel not found")),
        Err(e) => return Err(e.into()),
    };
    let mut data = row_json(&record);
    data["workspace"] = json!({ "name": record.app_name });
    Ok(ok(json!({ "data": data })))
}
