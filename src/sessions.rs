//! Sign-in sessions as Push-Alt's admin API has them (SPEC §5): a login yields an access token
//! (a JWT that lasts an hour) and a refresh token (256 random bits, stored as its SHA-256, good
//! for seven days) that buys new access tokens until it expires or its holder logs out. A new
//! password or a deactivation voids an account's refresh and access tokens ([`crate::accounts`]).
//!
//! Expired refresh tokens are deleted as sessions open, at most once a minute.

use std::time::Duration;

use crate::accounts::{Account, AccountError, Accounts};
use crate::auth::{RawToken, opaque};
use crate::ratelimit::OncePer;
use crate::store::{self, Store, now_ms};

/// Lifetime of an access token, in seconds.
pub const ACCESS_TTL_SECS: i64 = 3600;
/// Lifetime of a refresh token, in milliseconds.
pub const REFRESH_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// How often opening a session also deletes expired refresh tokens.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What a login hands out.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: RawToken,
    pub refresh_token: RawToken,
}

/// Why a refresh token was refused.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Unknown, malformed, logged out, or of an account that is gone or deactivated.
    #[error("Invalid refresh token")]
    Invalid,
    /// It was valid once; it is deleted now.
    #[error("Refresh token expired")]
    Expired,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// The session service.
pub struct Sessions {
    store: Store,
    sweeps: OncePer,
}

impl Sessions {
    pub fn new(store: Store) -> Self {
        Self { store, sweeps: OncePer::new(SWEEP_EVERY) }
    }

    /// Opens a session for an account whose login was just checked.
    pub async fn open(&self, accounts: &Accounts, account: &Account) -> Result<Session, SessionError> {
        let now = now_ms();
        if self.sweeps.claim(now) {
            self.store.delete_expired_refresh_tokens(now).await?;
        }
        let refresh_token = opaque::generate();
        self.store
            .insert_refresh_token(&opaque::hash(refresh_token.expose()), account.id, now + REFRESH_TTL_MS)
            .await?;
        let access_token = accounts.issue_token(account, ACCESS_TTL_SECS)?;
        Ok(Session { access_token, refresh_token })
    }

    /// A new access token for the holder of `refresh_token`.
    pub async fn refresh(&self, accounts: &Accounts, refresh_token: &str) -> Result<RawToken, SessionError> {
        let record = self.find(refresh_token).await?;
        if now_ms() >= record.expires_at {
            self.store.delete_refresh_token(&record.token_hash).await?;
            return Err(SessionError::Expired);
        }
        let account = match accounts.get(record.account_id).await {
            Ok(a) if a.active => a,
            Ok(_) | Err(AccountError::Store(store::Error::NotFound)) => return Err(SessionError::Invalid),
            Err(e) => return Err(e.into()),
        };
        Ok(accounts.issue_token(&account, ACCESS_TTL_SECS)?)
    }

    /// Ends the session of `refresh_token` (its access tokens run out within the hour).
    pub async fn close(&self, refresh_token: &str) -> Result<(), SessionError> {
        let record = self.find(refresh_token).await?;
        if self.store.delete_refresh_token(&record.token_hash).await? { Ok(()) } else { Err(SessionError::Invalid) }
    }

    /// The stored token, looked up by hash and compared in constant time.
    async fn find(&self, token: &str) -> Result<store::tokens::RefreshTokenRecord, SessionError> {
        if !opaque::well_formed(token) {
            return Err(SessionError::Invalid);
        }
        match self.store.refresh_token(&opaque::hash(token)).await {
            Ok(r) if opaque::matches(&r.token_hash, token) => Ok(r),
            Ok(_) | Err(store::Error::NotFound) => Err(SessionError::Invalid),
            Err(e) => Err(e.into()),
        }
    }
}
