//! Who is calling the admin API: `Authorization: Bearer <access token>` (SPEC §5). Checked by
//! the extractors before any body is read: 401 "No token provided" / "Invalid token", and 403
//! "Admin access required" on admin-only routes.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::ApiError;
use super::error::text;
use crate::accounts::{Account, AccountError, bearer};
use crate::audit;
use crate::server::forwarded::ClientAddr;
use crate::server::state::AppState;

/// A signed-in account (admin or not).
pub struct User(pub Account);

/// A signed-in admin.
pub struct Admin(pub Account);

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = bearer(header).ok_or_else(|| ApiError::unauthorized(text::NO_TOKEN))?;
        match state.accounts.authenticate(token).await {
            Ok(account) => Ok(Self(account)),
            Err(AccountError::Token) => {
                let client =
                    ClientAddr::from_request_parts(parts, state).await.map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0);
                audit::refused(audit::Refusal::BadToken, client, parts.uri.path(), &"invalid, expired or deactivated");
                Err(ApiError::unauthorized(text::INVALID_TOKEN))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let User(account) = User::from_request_parts(parts, state).await?;
        if account.is_admin { Ok(Self(account)) } else { Err(ApiError::Forbidden(text::ADMIN_REQUIRED)) }
    }
}
