//! The `push` section: FCM HTTP v1 and Web Push (VAPID) for Hestia's offline recipients.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Secret};

/// Push notifications to chat users without a live socket (SPEC §6).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// The Firebase service account (the JSON file the Firebase console gives): a file path, or
    /// the JSON itself. Default none: FCM is off, tokens are still accepted and kept.
    /// Env `SWITCHBOARD_PUSH_FCM_SERVICE_ACCOUNT`.
    pub fcm_service_account: Option<Secret>,
    /// Where FCM's send endpoint lives (`{base}/v1/projects/{project}/messages:send`).
    /// Default `https://fcm.googleapis.com`. Env `SWITCHBOARD_PUSH_FCM_BASE_URL`.
    pub fcm_base_url: String,
    /// The OAuth2 token endpoint; default the service account's `token_uri`.
    /// Env `SWITCHBOARD_PUSH_FCM_TOKEN_URL`.
    pub fcm_token_url: Option<String>,
    /// The VAPID private key: the P-256 scalar, 32 bytes in base64url (what `web-push
    /// generate-vapid-keys` prints as the private key). Default: generated once and kept in
    /// `<data_dir>/vapid_private_key`. Env `SWITCHBOARD_PUSH_VAPID_PRIVATE_KEY`.
    pub vapid_private_key: Option<Secret>,
    /// The VAPID `sub` claim push services may contact: a `mailto:` or `https:` URL.
    /// Default `mailto:admin@localhost`. Env `SWITCHBOARD_PUSH_VAPID_SUBJECT`.
    pub vapid_subject: String,
    /// How long a push service keeps an undelivered Web Push message, in seconds (`TTL`), and
    /// FCM's `ttl`. Default 86 400 (a day).
    pub ttl_secs: u32,
    /// Notifications waiting to be sent; past it new ones are dropped (and counted in
    /// `switchboard_push_dropped_total`) so that sending never slows messaging. Default 10 000.
    pub queue_size: usize,
    /// Tries per notification and device on 429, 5xx and network errors, the first included,
    /// with exponential backoff and jitter (`Retry-After` honoured). Default 5.
    pub max_attempts: u32,
    /// The first retry's delay, in milliseconds; each next one doubles, up to a minute.
    /// Default 1 000.
    pub retry_base_ms: u64,
    /// FCM tokens, and Web Push subscriptions, one account keeps; a new one replaces the
    /// oldest. Default 10.
    pub max_per_account: u32,
    /// Lets Web Push endpoints be `http://127.0.0.1`, `http://[::1]` or `http://localhost`
    /// (for tests with a local push service). Default false: endpoints are https only.
    /// Env `SWITCHBOARD_PUSH_ALLOW_LOOPBACK_HTTP`.
    pub allow_loopback_http: bool,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            fcm_service_account: None,
            fcm_base_url: "https://fcm.googleapis.com".into(),
            fcm_token_url: None,
            vapid_private_key: None,
            vapid_subject: "mailto:admin@localhost".into(),
            ttl_secs: 86_400,
            queue_size: 10_000,
            max_attempts: 5,
            retry_base_ms: 1_000,
            max_per_account: 10,
            allow_loopback_http: false,
        }
    }
}

impl Config {
    /// The `push` section's rules that types cannot carry (the service account and the VAPID
    /// key are read and checked when the server builds the push service).
    pub(super) fn validate_push(&self) -> Result<(), ConfigError> {
        let push = &self.push;
        let http_url = |key: &str, url: &str| {
            if url.starts_with("https://") || url.starts_with("http://") {
                Ok(())
            } else {
                Err(self.invalid(key, "must be an http:// or https:// URL"))
            }
        };
        http_url("push.fcm_base_url", &push.fcm_base_url)?;
        if let Some(url) = &push.fcm_token_url {
            http_url("push.fcm_token_url", url)?;
        }
        if !(push.vapid_subject.starts_with("mailto:") || push.vapid_subject.starts_with("https://")) {
            return Err(self.invalid("push.vapid_subject", "must be a mailto: or https: URL"));
        }
        for (key, value) in [
            ("push.queue_size", push.queue_size as u64),
            ("push.max_attempts", u64::from(push.max_attempts)),
            ("push.max_per_account", u64::from(push.max_per_account)),
            ("push.retry_base_ms", push.retry_base_ms),
        ] {
            if value == 0 {
                return Err(self.invalid(key, "must be at least 1"));
            }
        }
        if push.max_attempts > 20 {
            return Err(self.invalid("push.max_attempts", "must be at most 20"));
        }
        Ok(())
    }
}
