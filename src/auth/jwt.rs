//! Account tokens: JWT HS256, pinned (no `none`, no other algorithm), `exp` required, at most
//! 10 s of leeway (SPEC §10). Claims carry `sub`, `userId` and `username` so Notif's, Hestia's
//! and the dashboard's clients all read what they expect; Hestia's own tokens (signed with the
//! same `JWT_SECRET`, `userId` only) are accepted.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::unix_now;

/// Claims written into every token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(rename = "userId")]
    pub user_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub iat: i64,
    pub exp: i64,
}

/// Claims read from a token: the account id may come from `userId` (number or numeric string)
/// or `sub`.
#[derive(Debug, Deserialize)]
struct AnyClaims {
    sub: Option<Value>,
    #[serde(rename = "userId")]
    user_id: Option<Value>,
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
        let now = unix_now();
        let claims = Claims {
            sub: account_id.to_string(),
            user_id: account_id,
            username: username.map(str::to_owned),
            iat: now,
            exp: now + ttl_secs,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The account id a valid token names.
    pub fn verify(&self, token: &str) -> Result<i64, TokenError> {
        let data = decode::<AnyClaims>(token, &self.decoding, &self.validation).map_err(|_| TokenError::Invalid)?;
        let id = |v: &Value| match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        data.claims
            .user_id
            .as_ref()
            .and_then(id)
            .or_else(|| data.claims.sub.as_ref().and_then(id))
            .ok_or(TokenError::Invalid)
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
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(content.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    std::fs::write(path, content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const SECRET: &[u8] = b"test-secret";

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn round_trip_and_hestia_tokens() {
        let jwt = Jwt::new(SECRET, 3600);
        let t = jwt.issue(7, Some("ann")).unwrap();
        assert_eq!(jwt.verify(&t), Ok(7));
        // A Hestia token: userId and username, no sub.
        let claims = serde_json::json!({"userId": 9, "username": "h", "iat": unix_now(), "exp": unix_now() + 60});
        let t = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert_eq!(jwt.verify(&t), Ok(9));
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
        // garbage
        assert!(jwt.verify("a.b.c").is_err());
        assert!(jwt.verify("").is_err());
    }
}
