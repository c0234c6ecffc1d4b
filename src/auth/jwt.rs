//! Account tokens: JWT HS256, pinned (no `none`, no other algorithm), `exp` required, at most
//! 10 s of leeway (SPEC §10). Claims carry `sub`, `userId` and `username` so Notif's, Hestia's
//! and the dashboard's clients all read what they expect; Hestia's own tokens (signed with the
//! same `JWT_SECRET`, `userId` only) are accepted. A verified token says when it was issued, so
//! that an account can void what was issued before a new password ([`crate::accounts`]):
//! `iat_ms` in ours (`iat` has whole seconds, too coarse to tell a token from just before a
//! change from one just after), `iat` in others'.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Claims written into every token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(rename = "userId")]
    pub user_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub iat: i64,
    /// `iat` to the millisecond.
    pub iat_ms: i64,
    pub exp: i64,
}

/// Claims read from a token: the account id may come from `userId` (number or numeric string)
/// or `sub`; the issue time from `iat_ms` or `iat`.
#[derive(Debug, Deserialize)]
struct AnyClaims {
    sub: Option<Value>,
    #[serde(rename = "userId")]
    user_id: Option<Value>,
    iat: Option<Value>,
    iat_ms: Option<i64>,
}

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub account_id: i64,
    /// When it was issued, in ms since the epoch; 0 for a token that does not say.
    pub issued_at_ms: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("invalid or expired token")]
    Invalid,
}

/// Issues and verifies tokens with one secret.
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: i64,
}

impl Jwt {
    pub fn new(secret: &[u8], ttl_secs: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 10;
        validation.validate_exp = true;
        // Never in tokens this server issues, but honoured when present (RFC 7519 §4.1.5).
        validation.validate_nbf = true;
        validation.required_spec_claims = ["exp".to_owned()].into_iter().collect();
        validation.validate_aud = false;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
        }
    }

    /// A token for an account, valid for the configured lifetime.
    pub fn issue(&self, account_id: i64, username: Option<&str>) -> Result<String, jsonwebtoken::errors::Error> {
        self.issue_for(account_id, username, self.ttl_secs)
    }

    /// A token for an account, valid for `ttl_secs` (Push-Alt's access tokens last an hour).
    pub fn issue_for(
        &self,
        account_id: i64,
        username: Option<&str>,
        ttl_secs: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now_ms = crate::store::now_ms();
        let now = now_ms / 1000;
        let claims = Claims {
            sub: account_id.to_string(),
            user_id: account_id,
            username: username.map(str::to_owned),
            iat: now,
            iat_ms: now_ms,
            exp: now + ttl_secs,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The account a valid token names, and when it was issued.
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let claims =
            decode::<AnyClaims>(token, &self.decoding, &self.validation).map_err(|_| TokenError::Invalid)?.claims;
        let id = |v: &Value| match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        let account_id = claims
            .user_id
            .as_ref()
            .and_then(id)
            .or_else(|| claims.sub.as_ref().and_then(id))
            .ok_or(TokenError::Invalid)?;
        let iat_secs = claims.iat.as_ref().and_then(Value::as_f64).map(|s| (s * 1000.0) as i64);
        Ok(Verified { account_id, issued_at_ms: claims.iat_ms.or(iat_secs).unwrap_or(0) })
    }
}

/// The file in the data dir that keeps a generated secret (a backup copies it too).
pub const SECRET_FILE: &str = "jwt_secret";

/// The secret in `JWT_SECRET`, or one generated on first start and kept in the data dir.
pub fn load_or_create_secret(configured: Option<&str>, data_dir: &Path) -> std::io::Result<Vec<u8>> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(data_dir)?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, &secret)?;
    Ok(secret.into_bytes())
}

#[cfg(unix)]
pub(crate) fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(content.as_bytes())
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    std::fs::write(path, content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::unix_now;
    use base64::Engine;

    const SECRET: &[u8] = b"test-secret";

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn round_trip_and_hestia_tokens() {
        let jwt = Jwt::new(SECRET, 3600);
        let before = crate::store::now_ms();
        let t = jwt.issue(7, Some("ann")).unwrap();
        let ours = jwt.verify(&t).unwrap();
        assert_eq!(ours.account_id, 7);
        assert!((before..=crate::store::now_ms()).contains(&ours.issued_at_ms), "to the millisecond");
        // A Hestia token: userId and username, no sub, `iat` in seconds.
        let claims = serde_json::json!({"userId": 9, "username": "h", "iat": 1_700_000_000, "exp": unix_now() + 60});
        let t = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert_eq!(jwt.verify(&t), Ok(Verified { account_id: 9, issued_at_ms: 1_700_000_000_000 }));
        // One that does not say when: issued at the epoch, before any revocation.
        let claims = serde_json::json!({"sub": "4", "exp": unix_now() + 60});
        let t = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert_eq!(jwt.verify(&t), Ok(Verified { account_id: 4, issued_at_ms: 0 }));
    }

    #[test]
    fn refuses_tampering() {
        let jwt = Jwt::new(SECRET, 3600);
        let now = unix_now();
        let good = serde_json::json!({"sub": "1", "userId": 1, "iat": now, "exp": now + 60});
        // alg none
        let none = format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "typ": "JWT"})), b64(&good));
        assert!(jwt.verify(&none).is_err());
        // wrong secret
        let t = encode(&Header::new(Algorithm::HS256), &good, &EncodingKey::from_secret(b"other")).unwrap();
        assert!(jwt.verify(&t).is_err());
        // wrong algorithm, right secret
        let t = encode(&Header::new(Algorithm::HS512), &good, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(jwt.verify(&t).is_err());
        // missing exp
        let t =
            encode(&Header::new(Algorithm::HS256), &serde_json::json!({"sub": "1"}), &EncodingKey::from_secret(SECRET))
                .unwrap();
        assert!(jwt.verify(&t).is_err());
        // expired beyond the leeway
        let old = serde_json::json!({"sub": "1", "exp": now - 30});
        let t = encode(&Header::new(Algorithm::HS256), &old, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(jwt.verify(&t).is_err());
        // not valid yet
        let early = serde_json::json!({"sub": "1", "nbf": now + 60, "exp": now + 120});
        let t = encode(&Header::new(Algorithm::HS256), &early, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(jwt.verify(&t).is_err());
        // garbage
        assert!(jwt.verify("a.b.c").is_err());
        assert!(jwt.verify("").is_err());
    }
}
