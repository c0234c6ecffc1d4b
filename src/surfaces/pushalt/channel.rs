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
use super::schema::*;
use super::{ApiError, limit, ok};
use crate::core::ChannelName;
use crate::server::forwarded::ClientAddr;
use crate::server::state::AppState;
use crate::store::{self, now_ms, tokens::ChannelTokenRecord};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ChannelAuthBody)]
pub struct AuthBody {
    app_id: Option<Text>,
    app_key: Option<String>,
    channel_name: Option<String>,
    expires_in_seconds: Option<Seconds>,
}

/// `{app_id, app_key, channel_name, expires_in_seconds?}` → the token, the event name to listen
/// to, and the row. Every credential failure is 401 with Push-Alt's text.
#[utoipa::path(
    post,
    path = "/api/channel/auth",
    tag = "Push-Alt",
    request_body(content = AuthBody),
    responses(
        (status = 200, description = "The token.", body = ChannelAuthAnswer),
        (status = 400, description = "A field is missing or invalid.", body = PushAltFailure),
        (status = 401, description = "Unknown or deactivated workspace, or wrong credentials.", body = PushAltFailure),
        (status = 413, description = "The body is over the route's limit.", body = PushAltFailure),
        (status = 429, description = "Too many requests.", body = PushAltFailure, headers(("Retry-After" = u64))),
    ),
    security(("pushalt_app_key" = []), ("pusher_signature" = [])),
)]
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
#[utoipa::path(
    get,
    path = "/api/channel/channels",
    tag = "Push-Alt",
    params(("page" = Option<u32>, Query, description = "From 1; default 1."), ("take" = Option<u32>, Query, description = "1–100; default 10.")),
    responses(
        (status = 200, description = "A page of rows.", body = TokenPage),
        (status = 400, description = "Invalid pagination parameters.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
pub async fn list(State(state): State<AppState>, Admin(_): Admin, uri: Uri) -> Result<Json<Value>, ApiError> {
    let page = input::query_number(uri.query(), "page", 1, 1..=1_000_000)?;
    let take = input::query_number(uri.query(), "take", 10, 1..=MAX_TAKE)?;
    let offset = (page - 1) * take;
    let (rows, total) = state.store.channel_tokens_page(now_ms(), take, offset).await?;
    let data: Vec<Value> = rows.iter().map(row_json).collect();
    Ok(ok(json!({ "data": data, "hasMore": offset + take < total, "message": Value::Null })))
}

/// `GET /api/channel/{id}` (admin): one unexpired token's row with its workspace's name.
#[utoipa::path(
    get,
    path = "/api/channel/{id}",
    tag = "Push-Alt",
    params(("id" = i64, Path, description = "The row's id.")),
    responses(
        (status = 200, description = "The row.", body = TokenAnswer),
        (status = 400, description = "An invalid id.", body = PushAltFailure),
        (status = 401, description = "No bearer token, or an invalid or expired one.", body = PushAltFailure),
        (status = 403, description = "The caller is not an admin.", body = PushAltFailure),
        (status = 404, description = "Not found.", body = PushAltFailure),
    ),
    security(("bearer" = [])),
)]
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
