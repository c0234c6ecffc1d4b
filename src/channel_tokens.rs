//! Channel tokens (SPEC §5): an app's backend asks for one with its secret, hands it to a
//! browser, and the browser's Socket.IO socket joins the token's channel with it. A token is
//! 256 random bits, stored as its SHA-256, bound to one app and one channel, and works, as often
//! as it is presented (clients rejoin on every reconnect), until its `expires_at`, to the second.
//!
//! The HTTP side issues ([`ChannelTokens::issue`]); the Socket.IO side checks
//! ([`ChannelTokens::check`]). Expired tokens are swept as tokens are issued, at most once a
//! minute, so the table holds what was issued in the last 30 days at most.

use std::sync::Arc;
use std::time::Duration;

use crate::apps::{App, AppCache};
use crate::auth::{RawToken, opaque};
use crate::core::{ChannelKind, ChannelName};
use crate::ratelimit::OncePer;
use crate::store::tokens::{ChannelTokenRecord, NewChannelToken};
use crate::store::{self, Store, now_ms};

/// Lifetime of a token when the request names none (or 0), in seconds.
pub const DEFAULT_TTL_SECS: u64 = 3600;
/// The longest lifetime a token gets; longer requests are cut to it (SPEC §5).
pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;
/// How often issuing also deletes what has expired.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// A token just issued: the only time its text exists outside the client.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: RawToken,
    pub record: ChannelTokenRecord,
}

/// What a valid token grants: its app (enabled, as cached now) and channel.
#[derive(Debug, Clone)]
pub struct Grant {
    pub app: Arc<App>,
    pub channel: ChannelName,
    /// Milliseconds since the epoch; the grant ends there.
    pub expires_at: i64,
}

/// Why a token does not grant a join.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Unknown, malformed, expired, or of an app that no longer exists: one answer for all, so
    /// nothing is learned by trying (Push-Alt's `Invalid token or channel`).
    #[error("Invalid token or channel")]
    Invalid,
    /// The token's app is disabled.
    #[error("Workspace Deactivated")]
    AppDisabled,
    /// Presence channels need a member identity a token does not carry.
    #[error("presence channels cannot be joined with a channel token")]
    Presence,
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// The channel token service. Cheap to share (`Arc` it in the state).
pub struct ChannelTokens {
    store: Store,
    /// Deleting expired tokens, at most once a minute.
    sweeps: OncePer,
}

impl ChannelTokens {
    pub fn new(store: Store) -> Self {
        Self { store, sweeps: OncePer::new(SWEEP_EVERY) }
    }

    /// Issues a token for `channel` of `app` (whose credentials the caller checked), valid for
    /// `ttl_secs` (0 = [`DEFAULT_TTL_SECS`], cut to [`MAX_TTL_SECS`]).
    pub async fn issue(&self, app: &App, channel: &ChannelName, ttl_secs: u64) -> Result<Issued, TokenError> {
        if channel.kind() == ChannelKind::Presence {
            return Err(TokenError::Presence);
        }
        let now = now_ms();
        self.sweep(now).await?;
        let token = opaque::generate();
        let new = NewChannelToken {
            token_hash: opaque::hash(token.expose()),
            app_id: app.id.to_string(),
            channel: channel.as_str().to_owned(),
            expires_at: expires_at(now, ttl_secs),
        };
        let expires_at = new.expires_at;
        let (id, created_at) = self.store.insert_channel_token(new.clone()).await?;
        let record = ChannelTokenRecord {
            id,
            token_hash: new.token_hash,
            app_id: new.app_id,
            app_number: app.number,
            app_name: app.name.clone(),
            channel: new.channel,
            created_at,
            expires_at,
        };
        Ok(Issued { token, record })
    }

    /// What `token` grants now: for the Socket.IO `join_channel`. The lookup goes by the
    /// token's hash and the stored hash is compared with it in constant time.
    pub async fn check(&self, apps: &AppCache, token: &str) -> Result<Grant, TokenError> {
        self.check_at(apps, token, now_ms()).await
    }

    /// [`ChannelTokens::check`] at a given time (ms since the epoch): valid while
    /// `now < expires_at`.
    pub async fn check_at(&self, apps: &AppCache, token: &str, now: i64) -> Result<Grant, TokenError> {
        if !opaque::well_formed(token) {
            return Err(TokenError::Invalid);
        }
        let record = match self.store.channel_token_by_hash(&opaque::hash(token)).await {
            Ok(r) => r,
            Err(store::Error::NotFound) => return Err(TokenError::Invalid),
            Err(e) => return Err(e.into()),
        };
        if !opaque::matches(&record.token_hash, token) || now >= record.expires_at {
            return Err(TokenError::Invalid);
        }
        let app = apps.by_id(&record.app_id).ok_or(TokenError::Invalid)?;
        if !app.enabled {
            return Err(TokenError::AppDisabled);
        }
        // Stored only after it parsed; a row edited by hand into something else is refused.
        let channel = ChannelName::parse(&record.channel).map_err(|_| TokenError::Invalid)?;
        Ok(Grant { app, channel, expires_at: record.expires_at })
    }

    /// Deletes the tokens expired by `now` if the last sweep is a minute old.
    async fn sweep(&self, now: i64) -> Result<(), TokenError> {
        if !self.sweeps.claim(now) {
            return Ok(());
        }
        let gone = self.store.delete_expired_channel_tokens(now).await?;
        if gone > 0 {
            tracing::debug!(gone, "expired channel tokens deleted");
        }
        Ok(())
    }
}

/// When a token issued at `now` (ms) for `ttl_secs` expires: on a whole second, at least
/// `ttl_secs` later (so the `expires_at` shown, to the second, is exactly when it stops).
pub fn expires_at(now: i64, ttl_secs: u64) -> i64 {
    let ttl = match ttl_secs {
        0 => DEFAULT_TTL_SECS,
        n => n.min(MAX_TTL_SECS),
    };
    let end = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX / 2).saturating_mul(1000));
    // Rounded up to the next whole second.
    end.saturating_add(999) / 1000 * 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::{self, CreateApp};

    #[test]
    fn expiry_is_on_a_whole_second_at_least_the_ttl_away_and_capped() {
        assert_eq!(expires_at(10_000, 5), 15_000);
        assert_eq!(expires_at(10_001, 5), 16_000);
        assert_eq!(expires_at(10_999, 0), 10_999 + 3_600_000 + 1);
        assert_eq!(expires_at(0, u64::MAX), MAX_TTL_SECS as i64 * 1000);
        assert_eq!(expires_at(0, MAX_TTL_SECS + 1), MAX_TTL_SECS as i64 * 1000);
    }

    #[tokio::test]
    async fn a_token_works_until_its_second_and_for_its_app_and_channel_only() {
        let (store, _dir) = crate::store::temp_store().await;
        apps::create(&store, CreateApp { id: Some("a".into()), ..Default::default() }).await.unwrap();
        apps::create(&store, CreateApp { id: Some("b".into()), ..Default::default() }).await.unwrap();
        let cache = AppCache::load(store.clone()).await.unwrap();
        let tokens = ChannelTokens::new(store.clone());
        let a = cache.by_id("a").unwrap();
        let orders = ChannelName::parse("orders").unwrap();
        let issued = tokens.issue(&a, &orders, 2).await.unwrap();
        assert!(!format!("{issued:?}").contains(issued.token.expose()), "Debug keeps the token out");
        let end = issued.record.expires_at;
        assert_eq!(end % 1000, 0);
        // Reusable: every check before the second passes, naming app a and its channel.
        for _ in 0..3 {
            let grant = tokens.check_at(&cache, issued.token.expose(), end - 1).await.unwrap();
            assert_eq!((&*grant.app.id, grant.channel.as_str()), ("a", "orders"));
        }
        assert!(matches!(tokens.check_at(&cache, issued.token.expose(), end).await, Err(TokenError::Invalid)));
        // Forged, malformed and other tokens are one refusal.
        let forged = opaque::generate();
        for bad in [forged.expose(), "", "not-a-token", &issued.token.expose()[..63], &issued.record.token_hash] {
            assert!(matches!(tokens.check_at(&cache, bad, end - 1).await, Err(TokenError::Invalid)), "{bad}");
        }
        // A disabled app's tokens stop; a deleted app's are gone with it.
        apps::set_enabled(&store, "a", false).await.unwrap();
        cache.refresh().await.unwrap();
        assert!(matches!(tokens.check_at(&cache, issued.token.expose(), end - 1).await, Err(TokenError::AppDisabled)));
        apps::delete(&store, "a").await.unwrap();
        cache.refresh().await.unwrap();
        assert!(matches!(tokens.check_at(&cache, issued.token.expose(), end - 1).await, Err(TokenError::Invalid)));
        assert!(matches!(
            store.channel_token_by_hash(&opaque::hash(issued.token.expose())).await,
            Err(store::Error::NotFound)
        ));
        // Presence channels are refused at issue.
        let b = cache.by_id("b").unwrap();
        let presence = ChannelName::parse("presence-room").unwrap();
        assert!(matches!(tokens.issue(&b, &presence, 0).await, Err(TokenError::Presence)));
    }

    #[tokio::test]
    async fn issuing_sweeps_expired_tokens_once_a_minute() {
        let (store, _dir) = crate::store::temp_store().await;
        apps::create(&store, CreateApp { id: Some("a".into()), ..Default::default() }).await.unwrap();
        let cache = AppCache::load(store.clone()).await.unwrap();
        let tokens = ChannelTokens::new(store.clone());
        let a = cache.by_id("a").unwrap();
        let ch = ChannelName::parse("c").unwrap();
        // Issuing swept (nothing) at its own time, so the next sweep is due a minute later.
        let old = tokens.issue(&a, &ch, 1).await.unwrap();
        let due = old.record.created_at + SWEEP_EVERY.as_millis() as i64;
        tokens.sweep(due).await.unwrap();
        assert!(matches!(store.channel_token_by_hash(&old.record.token_hash).await, Err(store::Error::NotFound)));
        // Not due again within the minute: a token that expires meanwhile stays until then.
        let next = tokens.issue(&a, &ch, 1).await.unwrap();
        tokens.sweep(due + SWEEP_EVERY.as_millis() as i64 - 1).await.unwrap();
        assert!(store.channel_token_by_hash(&next.record.token_hash).await.is_ok());
    }
}
