//! The bearer check every authenticated chat route shares (uploads and push use it too):
//! missing → 401 "No token provided"; forged, expired, `alg: none`, another algorithm, no
//! `exp`, or a deleted account → 403 "Invalid or expired token" (SPEC §6).

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::ApiError;
use crate::accounts::{AccountError, bearer};
use crate::audit;
use crate::chat::ChatError;
use crate::server::forwarded::ClientAddr;
use crate::server::state::AppState;

/// The signed-in account's id.
#[derive(Debug, Clone, Copy)]
pub struct Authed(pub i64);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = bearer(header).ok_or(ApiError::NoToken)?;
        match state.accounts.authenticate(token).await {
            Ok(account) => Ok(Self(account.id)),
            Err(AccountError::Token) => {
                let client =
                    ClientAddr::from_request_parts(parts, state).await.map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0);
                audit::refused(audit::Refusal::BadToken, client, parts.uri.path(), &"invalid, expired or deleted");
                Err(ApiError::BadToken)
            }
            Err(AccountError::Store(e)) => Err(ChatError::Store(e).into()),
            Err(e) => {
                tracing::error!(error = %e, "hestia: checking a token");
                Err(ApiError::BadToken)
            }
        }
    }
}
