//! Security-relevant events, one `info` line each, for the operator: refused signatures, unknown
//! keys, failed logins, refused origins, and every app change. A flood of refusals costs at most
//! ten lines a second per kind (the line after a pause says how many were held back). Never a
//! secret, a token or a payload: a refusal names its kind, the client address, the app or login
//! name it was for (cut to 64 characters), and the reason.

use std::fmt::Display;
use std::net::IpAddr;
use std::time::Duration;

use crate::ratelimit::LogThrottle;

/// What was refused.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// A Pusher-signed HTTP request whose signature, key, timestamp or body hash did not check.
    BadSignature,
    /// A key or secret that names no (enabled) app.
    UnknownKey,
    /// A login with an unknown name or a wrong password.
    FailedLogin,
    /// An upgrade or request from an origin the app does not allow.
    OriginRefused,
    /// A bearer token that did not verify.
    BadToken,
    /// A request over a rate limit.
    RateLimited,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::FailedLogin => "failed_login",
            Self::OriginRefused => "origin_refused",
            Self::BadToken => "bad_token",
            Self::RateLimited => "rate_limited",
        }
    }

    fn throttle(self) -> &'static LogThrottle {
        static THROTTLES: [LogThrottle; 6] = [const { LogThrottle::new(Duration::from_millis(100)) }; 6];
        &THROTTLES[self as usize]
    }
}

/// Logs a refusal (rate-limited per kind).
pub fn refused(kind: Refusal, client: IpAddr, subject: &str, reason: &dyn Display) {
    let Some(held_back) = kind.throttle().allow() else { return };
    let subject: String = subject.chars().take(64).flat_map(char::escape_default).collect();
    tracing::info!(
        target: "switchboard::audit",
        refusal = kind.label(),
        client = %client,
        subject = %subject,
        reason = %reason,
        held_back,
        "refused: {}",
        kind.label()
    );
}

/// Logs a change to an app (created, updated, secret rotated, enabled, disabled, deleted).
pub fn app_changed(action: &'static str, app_id: &str) {
    tracing::info!(target: "switchboard::audit", app_id, action, "app {action}");
}
