//! The shapes this surface answers with, for the OpenAPI document: the handlers build them as
//! `{"success":true, …}` envelopes with `serde_json::json!` ([`super::ok`]); these types say
//! what those envelopes hold (schemathesis checks answers against them in `scripts/test.sh`).
#![allow(dead_code)] // Read by the OpenAPI derive only.

use serde_json::Value;
use utoipa::ToSchema;

/// A failure: `{"success": false, "message"}`.
#[derive(ToSchema)]
pub struct PushAltFailure {
    /// `false`.
    success: bool,
    message: String,
}

/// `{"success": true, "message"}`.
#[derive(ToSchema)]
pub struct PushAltDone {
    /// `true`.
    success: bool,
    message: String,
}

/// An account as Push-Alt showed its users.
#[derive(ToSchema)]
pub struct PushAltAccount {
    id: i64,
    name: String,
    /// Always null.
    last_name: Option<String>,
    email: Option<String>,
    username: Option<String>,
    /// `admin` or `user`.
    role: String,
    is_root: bool,
    /// `active` or `deactivated`.
    status: String,
    /// ISO 8601.
    created_at: String,
    /// ISO 8601.
    updated_at: String,
}

#[derive(ToSchema)]
pub struct PushAltAccountAnswer {
    success: bool,
    message: Option<String>,
    data: PushAltAccount,
}

#[derive(ToSchema)]
pub struct PushAltAccounts {
    success: bool,
    message: Option<String>,
    data: Vec<PushAltAccount>,
}

/// One user restored (`id`) or several (`ids`).
#[derive(ToSchema)]
pub struct RestoredAnswer {
    success: bool,
    message: String,
    #[schema(value_type = Object)]
    data: Value,
}

/// Tokens of a session.
#[derive(ToSchema)]
pub struct Session {
    email: Option<String>,
    name: String,
    /// `Bearer`.
    #[schema(rename = "type")]
    kind: String,
    /// Valid for an hour.
    access_token: String,
    /// Valid for a week; `POST /api/auth/refresh` trades it for a new access token.
    refresh_token: String,
}

#[derive(ToSchema)]
pub struct LoginAnswer {
    success: bool,
    message: String,
    data: Session,
}

#[derive(ToSchema)]
pub struct AccessToken {
    access_token: String,
}

#[derive(ToSchema)]
pub struct RefreshAnswer {
    success: bool,
    message: String,
    data: AccessToken,
}

#[derive(ToSchema)]
pub struct SetupState {
    setup_completed: bool,
}

#[derive(ToSchema)]
pub struct SetupStateAnswer {
    success: bool,
    data: SetupState,
}

#[derive(ToSchema)]
pub struct SetupSettings {
    app_name: String,
    timezone: String,
}

#[derive(ToSchema)]
pub struct SetupUser {
    name: String,
    email: Option<String>,
}

#[derive(ToSchema)]
pub struct SetupDone {
    settings: SetupSettings,
    user: SetupUser,
}

#[derive(ToSchema)]
pub struct SetupAnswer {
    success: bool,
    message: String,
    data: SetupDone,
}

/// A workspace (an app): `id` is its number, `app_id` its id.
#[derive(ToSchema)]
pub struct Workspace {
    id: i64,
    name: String,
    app_id: String,
    key: String,
    description: Option<String>,
    /// `active` or `deactivated`.
    status: String,
    /// ISO 8601.
    created_at: String,
    /// ISO 8601.
    updated_at: String,
}

#[derive(ToSchema)]
pub struct WorkspaceAnswer {
    success: bool,
    message: String,
    data: Workspace,
}

#[derive(ToSchema)]
pub struct WorkspacesAnswer {
    success: bool,
    message: String,
    data: Vec<Workspace>,
}

/// A channel token's row (never the token itself but at issue).
#[derive(ToSchema)]
pub struct TokenRow {
    id: i64,
    /// The workspace's (app's) number.
    workspace_id: i64,
    channel_name: String,
    created_at: String,
    expires_at: String,
}

/// The row with the token, at issue.
#[derive(ToSchema)]
pub struct IssuedRow {
    id: i64,
    workspace_id: i64,
    channel_name: String,
    created_at: String,
    expires_at: String,
    token: String,
}

#[derive(ToSchema)]
pub struct ChannelAuthAnswer {
    success: bool,
    /// For `join_channel` on the Socket.IO side.
    token: String,
    /// The Socket.IO event the channel's messages come as.
    message_listen_name: String,
    message: String,
    data: IssuedRow,
}

#[derive(ToSchema)]
pub struct TokenPage {
    success: bool,
    data: Vec<TokenRow>,
    #[schema(rename = "hasMore")]
    has_more: bool,
    /// Always null.
    message: Option<String>,
}

#[derive(ToSchema)]
pub struct WorkspaceName {
    name: String,
}

#[derive(ToSchema)]
pub struct TokenDetail {
    id: i64,
    workspace_id: i64,
    channel_name: String,
    created_at: String,
    expires_at: String,
    workspace: WorkspaceName,
}

#[derive(ToSchema)]
pub struct TokenAnswer {
    success: bool,
    data: TokenDetail,
}

/// An allowed origin.
#[derive(ToSchema)]
pub struct CorsEntry {
    id: i64,
    url: String,
    created_at: String,
    updated_at: String,
}

#[derive(ToSchema)]
pub struct CorsListAnswer {
    success: bool,
    data: Vec<CorsEntry>,
}

#[derive(ToSchema)]
pub struct CorsAnswer {
    success: bool,
    message: String,
    data: CorsEntry,
}

#[derive(ToSchema)]
pub struct Setting {
    name: String,
    value: String,
    /// ISO 8601.
    created_at: String,
    /// ISO 8601.
    updated_at: String,
}

#[derive(ToSchema)]
pub struct SettingAnswer {
    success: bool,
    data: Setting,
}

#[derive(ToSchema)]
pub struct SettingsAnswer {
    success: bool,
    data: Vec<Setting>,
}

/// Every setting as `{name: value}`.
#[derive(ToSchema)]
pub struct SettingsFormAnswer {
    success: bool,
    data: std::collections::BTreeMap<String, String>,
}

/// The settings form: `{name: value}` of strings (JSON, or `multipart/form-data` fields).
#[derive(ToSchema)]
pub struct SettingsForm(std::collections::BTreeMap<String, String>);

#[derive(ToSchema)]
pub struct RoundTrips {
    database_ms: f64,
    broker_ms: f64,
}

#[derive(ToSchema)]
pub struct TestConnectionAnswer {
    success: bool,
    message: String,
    data: RoundTrips,
}

/// A Socket.IO message to emit on a channel.
#[derive(ToSchema)]
pub struct EmitFields {
    /// The workspace's app id.
    #[schema(value_type = String)]
    app_id: Value,
    /// The app secret (or sign the query Pusher-style; an app with `legacy_open_emit` needs
    /// neither).
    app_key: Option<String>,
    channel_name: String,
    /// Any JSON value, sent as the message; at most the app's `max_message_bytes`.
    body: Value,
}
