//! Push notifications for chat users without a live socket (SPEC §6): FCM HTTP v1 and Web Push
//! (RFC 8291 payloads, RFC 8292 VAPID). Registration is checked here and stored through the
//! store; [`Push::notify`] only queues (a bounded queue: when it is full the notification is
//! dropped and counted), and one worker sends, every device on a task of its own under a cap,
//! retrying 429, 5xx and network errors with exponential backoff and jitter. Devices their
//! service calls gone are forgotten.

pub mod fcm;
pub mod http;
pub mod webpush;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Uri};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::PushConfig;
use crate::store::{self, Store};
use fcm::{Fcm, ServiceAccount};
use http::{HttpClient, Outcome, Reach, internal};
use webpush::{ClientKeys, Vapid};

/// Deliveries in flight at once (each may be waiting out a backoff).
const MAX_IN_FLIGHT: usize = 64;
/// The longest FCM registration token accepted (FCM's are about 160–250 characters).
const MAX_FCM_TOKEN: usize = 512;
/// The longest Web Push endpoint accepted.
const MAX_ENDPOINT: usize = 2048;
/// The most of a notification's body sent: a payload must fit one Web Push record.
const MAX_BODY_CHARS: usize = 1000;
/// The longest backoff between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What a recipient's devices show.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub title: String,
    pub body: String,
    /// An object of extra fields for the app (FCM gets its values as strings).
    pub data: Value,
}

/// A browser's `PushSubscription` (`subscription.toJSON()`): endpoint and keys, base64url.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Keys(#[from] webpush::KeyError),
    #[error("store: {0}")]
    Store(#[from] store::Error),
}

/// A stored registration, by table and id.
#[derive(Clone, Copy)]
enum Device {
    Fcm(i64),
    WebPush(i64),
}

/// One notify call, waiting for the worker.
struct Job {
    recipients: Vec<i64>,
    notification: Notification,
}

/// Cheap to clone; in `AppState` and the chat service.
#[derive(Clone)]
pub struct Push(Arc<Inner>);

struct Inner {
    queue: mpsc::Sender<Job>,
    senders: Arc<Senders>,
    max_per_account: i64,
}

/// What the worker and its delivery tasks share.
struct Senders {
    store: Store,
    /// Web Push's client: public addresses only (loopback when allowed), since endpoints are
    /// users' input.
    web_push_http: HttpClient,
    allow_loopback_http: bool,
    fcm: Option<Fcm>,
    vapid: Vapid,
    ttl_secs: u32,
    max_attempts: u32,
    retry_base: Duration,
    shutdown: CancellationToken,
}

impl Push {
    /// Reads the service account and the VAPID key (blocking file reads: call it at start) and
    /// starts the worker, which ends with `shutdown`. The error is `(setting, why)`.
    pub fn start(
        store: Store,
        config: &PushConfig,
        data_dir: &Path,
        shutdown: CancellationToken,
    ) -> Result<Self, (&'static str, String)> {
        let fcm = match &config.fcm_service_account {
            Some(setting) => {
                let account = ServiceAccount::load(&setting.0).map_err(|why| ("push.fcm_service_account", why))?;
                let fcm = Fcm::new(
                    account,
                    config.fcm_token_url.as_deref(),
                    &config.fcm_base_url,
                    HttpClient::new(Reach::Any),
                )
                .map_err(|why| ("push.fcm_base_url", why))?;
                Some(fcm)
            }
            None => None,
        };
        let vapid = Vapid::load_or_create(
            config.vapid_private_key.as_ref().map(|s| s.0.as_str()),
            data_dir,
            &config.vapid_subject,
        )
        .map_err(|why| ("push.vapid_private_key", why))?;
        let senders = Arc::new(Senders {
            store,
            web_push_http: HttpClient::new(Reach::Public { loopback: config.allow_loopback_http }),
            allow_loopback_http: config.allow_loopback_http,
            fcm,
            vapid,
            ttl_secs: config.ttl_secs,
            max_attempts: config.max_attempts.max(1),
            retry_base: Duration::from_millis(config.retry_base_ms.max(1)),
            shutdown,
        });
        let (queue, rx) = mpsc::channel(config.queue_size.max(1));
        tokio::spawn(run(senders.clone(), rx));
        Ok(Self(Arc::new(Inner { queue, senders, max_per_account: i64::from(config.max_per_account.max(1)) })))
    }

    /// Whether FCM is configured (tokens are kept either way).
    pub fn fcm_enabled(&self) -> bool {
        self.0.senders.fcm.is_some()
    }

    /// The VAPID public key, base64url: a web client's `applicationServerKey`.
    pub fn vapid_public_key(&self) -> &str {
        self.0.senders.vapid.public_key()
    }

    /// Keeps an FCM registration token for `account`.
    pub async fn register_fcm(&self, account: i64, token: &str) -> Result<(), PushError> {
        let token = token.trim();
        if token.is_empty() || token.len() > MAX_FCM_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PushError::Invalid("token must be 1–512 printable ASCII characters"));
        }
        Ok(self.0.senders.store.register_fcm_token(account, token, self.0.max_per_account).await?)
    }

    /// Keeps a Web Push subscription for `account`.
    pub async fn register_web_push(&self, account: i64, sub: &Subscription) -> Result<(), PushError> {
        check_endpoint(&sub.endpoint, self.0.senders.allow_loopback_http)?;
        ClientKeys::parse(&sub.p256dh, &sub.auth)?;
        let new = store::push::NewWebPush { endpoint: &sub.endpoint, p256dh: sub.p256dh.trim(), auth: sub.auth.trim() };
        Ok(self.0.senders.store.register_web_push(account, new, self.0.max_per_account).await?)
    }

    /// Queues `notification` for every device of `recipients`. Never waits: when the queue is
    /// full the notification is dropped (and counted), since messages are already delivered
    /// to sockets and stored.
    pub fn notify(&self, recipients: Vec<i64>, notification: Notification) {
        if recipients.is_empty() {
            return;
        }
        if self.0.queue.try_send(Job { recipients, notification }).is_err() {
            crate::metrics::push_dropped();
        }
    }
}

/// An endpoint push may call: https (or loopback http when allowed), ≤ 2048 bytes, no user
/// info, and not an address literal inside this network. Names are checked where they are
/// resolved, at each connection ([`http::Resolver`]).
fn check_endpoint(endpoint: &str, allow_loopback_http: bool) -> Result<Uri, PushError> {
    const BAD: &str = "endpoint must be an https URL of at most 2048 bytes";
    if endpoint.is_empty() || endpoint.len() > MAX_ENDPOINT {
        return Err(PushError::Invalid(BAD));
    }
    let uri: Uri = endpoint.parse().map_err(|_| PushError::Invalid(BAD))?;
    let authority = uri.authority().ok_or(PushError::Invalid(BAD))?;
    if authority.as_str().contains('@') || uri.host().is_none_or(str::is_empty) {
        return Err(PushError::Invalid(BAD));
    }
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let ip = host.parse::<IpAddr>().ok();
    let loopback = host.eq_ignore_ascii_case("localhost") || ip.is_some_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") if !loopback || allow_loopback_http => {}
        Some("http") if loopback && allow_loopback_http => {}
        _ => return Err(PushError::Invalid(BAD)),
    }
    if !loopback && ip.is_some_and(internal) {
        return Err(PushError::Invalid("endpoint must not be an internal address"));
    }
    Ok(uri)
}

/// The worker: takes jobs until shutdown, looks their devices up and starts a delivery each.
async fn run(senders: Arc<Senders>, mut rx: mpsc::Receiver<Job>) {
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let job = tokio::select! {
            _ = senders.shutdown.cancelled() => return,
            job = rx.recv() => match job { Some(job) => job, None => return },
        };
        senders.dispatch(job, &permits).await;
    }
}

impl Senders {
    async fn dispatch(self: &Arc<Self>, job: Job, permits: &Arc<Semaphore>) {
        let Job { recipients, notification } = job;
        let fcm_tokens = match self.fcm {
            Some(_) => self.store.fcm_tokens_of(&recipients).await,
            None => Ok(Vec::new()),
        };
        let subscriptions = self.store.web_push_of(&recipients).await;
        let (fcm_tokens, subscriptions) = match (fcm_tokens, subscriptions) {
            (Ok(f), Ok(w)) => (f, w),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "push: reading registrations");
                return;
            }
        };
        let notification = Arc::new(notification);
        for token in fcm_tokens {
            let Ok(permit) = permits.clone().acquire_owned().await else { return };
            let (me, n) = (self.clone(), notification.clone());
            tokio::spawn(async move {
                me.deliver_fcm(token, &n).await;
                drop(permit);
            });
        }
        for sub in subscriptions {
            let Ok(permit) = permits.clone().acquire_owned().await else { return };
            let (me, n) = (self.clone(), notification.clone());
            tokio::spawn(async move {
                me.deliver_web_push(sub, &n).await;
                drop(permit);
            });
        }
    }

    async fn deliver_fcm(&self, token: store::push::FcmTokenRecord, n: &Notification) {
        let Some(fcm) = &self.fcm else { return };
        let message = fcm::message(&token.token, &n.title, &clip(&n.body), &n.data, self.ttl_secs);
        let message = &message;
        let outcome = self.with_retries(move || fcm.send_once(message)).await;
        self.settle(Device::Fcm(token.id), outcome).await;
    }

    async fn deliver_web_push(&self, sub: store::push::WebPushRecord, n: &Notification) {
        let outcome = self.web_push_outcome(&sub, n).await;
        self.settle(Device::WebPush(sub.id), outcome).await;
    }

    async fn web_push_outcome(&self, sub: &store::push::WebPushRecord, n: &Notification) -> Outcome {
        // Checked again: the rules (or `allow_loopback_http`) may have changed since it was kept.
        let (uri, keys) = match (
            check_endpoint(&sub.endpoint, self.allow_loopback_http),
            ClientKeys::parse(&sub.p256dh, &sub.auth),
        ) {
            (Ok(uri), Ok(keys)) => (uri, keys),
            _ => return Outcome::Failed("a stored subscription is no longer valid".into()),
        };
        let mut payload = json!({ "title": n.title, "body": clip(&n.body), "data": n.data }).to_string();
        if payload.len() > webpush::MAX_PLAINTEXT {
            payload = json!({ "title": n.title, "body": clip(&n.body) }).to_string();
        }
        let Some(body) = webpush::encrypt(&keys, payload.as_bytes()) else {
            return Outcome::Failed("the payload does not fit one record".into());
        };
        let body = Bytes::from(body);
        let (uri, body) = (&uri, &body);
        self.with_retries(move || async move {
            let Some(authorization) = self.vapid.authorization(uri) else {
                return Outcome::Failed("signing the VAPID token".into());
            };
            let request = Request::post(uri.clone())
                .header("TTL", self.ttl_secs.to_string())
                .header("Urgency", "high")
                .header(hyper::header::CONTENT_ENCODING, "aes128gcm")
                .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
                .header(hyper::header::AUTHORIZATION, authorization)
                .body(Full::new(body.clone()));
            let request = match request {
                Ok(request) => request,
                Err(e) => return Outcome::Failed(format!("request: {e}")),
            };
            match self.web_push_http.send(request).await {
                Ok(reply) if matches!(reply.status.as_u16(), 404 | 410) => Outcome::Gone,
                Ok(reply) => reply.outcome(),
                Err(_) => Outcome::Retry(None),
            }
        })
        .await
    }

    /// Tries `attempt` up to `max_attempts` times while it says retry, waiting the service's
    /// `Retry-After` or an exponential backoff with jitter between tries; shutdown ends it.
    async fn with_retries<F: Future<Output = Outcome>>(&self, mut attempt: impl FnMut() -> F) -> Outcome {
        let mut tries = 0;
        loop {
            tries += 1;
            let outcome = tokio::select! {
                _ = self.shutdown.cancelled() => return Outcome::Failed("shutting down".into()),
                outcome = attempt() => outcome,
            };
            let Outcome::Retry(after) = outcome else { return outcome };
            if tries >= self.max_attempts {
                return Outcome::Failed(format!("still failing after {tries} tries"));
            }
            let wait = after.unwrap_or_else(|| backoff(self.retry_base, tries));
            tokio::select! {
                _ = self.shutdown.cancelled() => return Outcome::Failed("shutting down".into()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Records the outcome; a gone device is forgotten.
    async fn settle(&self, device: Device, outcome: Outcome) {
        let service = match device {
            Device::Fcm(_) => "fcm",
            Device::WebPush(_) => "web_push",
        };
        let label = match &outcome {
            Outcome::Delivered => "delivered",
            Outcome::Gone => {
                let forgotten = match device {
                    Device::Fcm(id) => self.store.delete_fcm_token(id).await,
                    Device::WebPush(id) => self.store.delete_web_push(id).await,
                };
                if let Err(e) = forgotten {
                    tracing::warn!(error = %e, service, "push: forgetting a gone device");
                }
                "gone"
            }
            Outcome::Retry(_) | Outcome::Failed(_) => {
                if let Outcome::Failed(why) = &outcome {
                    tracing::warn!(service, why, "push: not delivered");
                }
                "failed"
            }
        };
        crate::metrics::push_sent(service, label);
    }
}

/// The wait before try `tries + 1`: base × 2^(tries − 1), at most a minute, times a random
/// factor in [0.5, 1.5) so that devices failing together do not retry together.
fn backoff(base: Duration, tries: u32) -> Duration {
    let exp = base.saturating_mul(1 << tries.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    exp.mul_f64(0.5 + rand::random::<f64>())
}

/// The body cut to what one notification carries.
fn clip(body: &str) -> String {
    match body.char_indices().nth(MAX_BODY_CHARS) {
        Some((at, _)) => format!("{}…", &body[..at]),
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let ok = |e: &str, loopback| check_endpoint(e, loopback).is_ok();
        assert!(ok("https://fcm.googleapis.com/fcm/send/abc", false));
        assert!(ok("https://updates.push.services.mozilla.com/wpush/v2/x", false));
        assert!(!ok("http://push.example.com/x", false));
        assert!(!ok("http://127.0.0.1:9/x", false));
        assert!(ok("http://127.0.0.1:9/x", true));
        assert!(ok("http://localhost:9/x", true));
        assert!(ok("http://[::1]:9/x", true));
        assert!(!ok("http://push.example.com/x", true), "loopback only");
        assert!(!ok("https://10.1.2.3/x", false));
        assert!(!ok("https://[fd00::1]/x", false));
        assert!(!ok("https://169.254.169.254/latest", false));
        assert!(!ok("https://user:pw@push.example.com/x", false));
        assert!(!ok("javascript:alert(1)", false));
        assert!(!ok("", false));
        assert!(!ok(&format!("https://push.example.com/{}", "a".repeat(2048)), false));
    }

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        let base = Duration::from_millis(100);
        for tries in 1..=3 {
            let exp = base * (1 << (tries - 1));
            let wait = backoff(base, tries);
            assert!(wait >= exp / 2 && wait < exp * 3 / 2, "{tries}: {wait:?}");
        }
        assert!(backoff(base, 40) < MAX_BACKOFF * 3 / 2);
    }

    #[test]
    fn bodies_are_clipped() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(MAX_BODY_CHARS + 5);
        assert_eq!(clip(&long).chars().count(), MAX_BODY_CHARS + 1);
    }
}
