//! How an app's backend proves itself to `/api/channel/auth` and `/api/message/emit`: the app
//! secret as `app_key` in the body (Push-Alt's way), or a request signed the Pusher way over
//! its own path (`auth_key`, `auth_timestamp`, `auth_version`, `body_md5` and `auth_signature`
//! in the query, the HMAC of `POST\n<path>\n<sorted query>`; the Pusher SDKs' `post()` cannot
//! make it, it prefixes `/apps/{id}`), whose head is checked before the body is read. Secrets
//! are compared in constant time; every refusal is audited.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{Method, Uri};

use super::ApiError;
use super::error::text;
use crate::apps::App;
use crate::audit::{self, Refusal};
use crate::auth::pusher::{self as sig, SignedHead};
use crate::auth::{secrets_equal, unix_now};
use crate::server::state::AppState;

/// A request whose signed query checked out: the app that signed it, and the check its body
/// still has to pass.
pub struct Signed {
    pub app: Arc<App>,
    head: SignedHead,
}

/// The proof a request carries, once its body is parsed.
pub enum Proof<'a> {
    Signed(&'a Signed),
    AppKey(&'a str),
    Missing,
}

impl<'a> Proof<'a> {
    pub fn of(signed: Option<&'a Signed>, app_key: Option<&'a str>) -> Self {
        match (signed, app_key.filter(|k| !k.is_empty())) {
            (Some(s), _) => Self::Signed(s),
            (None, Some(k)) => Self::AppKey(k),
            (None, None) => Self::Missing,
        }
    }
}

/// Checks a Pusher signature in the query, if the query has one (`auth_key` names the app by
/// its public key). Runs before the body is read.
pub fn signed_head(state: &AppState, client: IpAddr, method: &Method, uri: &Uri) -> Result<Option<Signed>, ApiError> {
    let query = uri.query().unwrap_or_default();
    let key = sig::query_pairs(query).into_iter().find(|(k, _)| k.eq_ignore_ascii_case("auth_key")).map(|(_, v)| v);
    let Some(key) = key else { return Ok(None) };
    let refused = |kind, why: &dyn std::fmt::Display| {
        audit::refused(kind, client, uri.path(), why);
        ApiError::unauthorized(text::INVALID_CREDENTIALS)
    };
    let app = state.apps.by_key(&key).ok_or_else(|| refused(Refusal::UnknownKey, &"auth_key names no app"))?;
    let head = sig::verify_head(&app.key, &app.secret.0, method.as_str(), uri.path(), query, unix_now())
        .map_err(|e| refused(Refusal::BadSignature, &e))?;
    Ok(Some(Signed { app, head }))
}

/// Whether `proof` is `app`'s: its secret, or its signature over this body. A missing proof is
/// refused here too; callers that may allow it decide before.
pub fn verify(app: &App, proof: &Proof<'_>, body: &[u8], client: IpAddr) -> Result<(), ApiError> {
    let ok = match proof {
        Proof::AppKey(key) => secrets_equal(&app.secret.0, key),
        Proof::Signed(signed) => signed.app.id == app.id && signed.head.verify_body(body).is_ok(),
        Proof::Missing => false,
    };
    if ok {
        return Ok(());
    }
    let kind = if matches!(proof, Proof::Signed(_)) { Refusal::BadSignature } else { Refusal::UnknownKey };
    audit::refused(kind, client, &app.id, &"wrong app_key or signature for this workspace");
    Err(ApiError::unauthorized(text::INVALID_CREDENTIALS))
}
