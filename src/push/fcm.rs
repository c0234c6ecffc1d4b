//! FCM HTTP v1: the service account, the OAuth2 access token it buys with an RS256-signed
//! JWT-bearer assertion (cached until shortly before it expires), and the send call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Uri};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{HttpClient, Outcome};

/// The OAuth2 scope FCM's send call wants.
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// A cached access token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(120);

/// The parts of a Google service-account JSON file FCM needs.
pub struct ServiceAccount {
    pub client_email: String,
    pub project_id: String,
    pub token_uri: String,
    key_id: Option<String>,
    key: jsonwebtoken::EncodingKey,
}

#[derive(Deserialize)]
struct AccountFile {
    client_email: String,
    private_key: String,
    project_id: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

impl ServiceAccount {
    /// Reads `setting`: the JSON itself when it starts with `{`, else a path to it. The key is
    /// tried once here so that a bad one stops start-up rather than every send. Blocking: call
    /// it at start.
    pub fn load(setting: &str) -> Result<Self, String> {
        let text = if setting.trim_start().starts_with('{') {
            setting.to_owned()
        } else {
            std::fs::read_to_string(setting.trim()).map_err(|e| format!("cannot read {}: {e}", setting.trim()))?
        };
        let file: AccountFile =
            serde_json::from_str(&text).map_err(|e| format!("not a service-account JSON file: {e}"))?;
        if file.client_email.is_empty() || file.project_id.is_empty() {
            return Err("client_email and project_id must not be empty".into());
        }
        if !file.project_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b':' || b == b'.') {
            return Err("project_id is not a Firebase project id".into());
        }
        let key = rsa_key(&file.private_key)?;
        let account = Self {
            client_email: file.client_email,
            project_id: file.project_id,
            token_uri: file.token_uri,
            key_id: file.private_key_id,
            key,
        };
        account.assertion(&account.token_uri).map_err(|e| format!("private_key cannot sign RS256: {e}"))?;
        Ok(account)
    }

    /// The JWT-bearer assertion for `audience` (the token endpoint), valid an hour.
    fn assertion(&self, audience: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let now = crate::auth::unix_now();
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": audience,
            "iat": now,
            "exp": now + 3600,
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = self.key_id.clone();
        jsonwebtoken::encode(&header, &claims, &self.key)
    }
}

const RSA_ENCRYPTION: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// A PEM RSA private key, PKCS#8 (`BEGIN PRIVATE KEY`, what Google issues) or PKCS#1 (`BEGIN RSA
/// PRIVATE KEY`), as the PKCS#1 DER jsonwebtoken signs with.
fn rsa_key(pem: &str) -> Result<jsonwebtoken::EncodingKey, String> {
    let bad = || "private_key is not a PEM RSA private key".to_owned();
    let pem = pem.replace("\\n", "\n");
    let (label, body) = pem.split_once("-----BEGIN ").and_then(|(_, rest)| rest.split_once("-----")).ok_or_else(bad)?;
    let body = body.split("-----END").next().ok_or_else(bad)?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| bad())?;
    let pkcs1 = match label {
        "PRIVATE KEY" => {
            let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).map_err(|_| bad())?;
            if info.algorithm.oid != RSA_ENCRYPTION {
                return Err("private_key is not an RSA key".into());
            }
            info.private_key.to_vec()
        }
        "RSA PRIVATE KEY" => der,
        _ => return Err(bad()),
    };
    Ok(jsonwebtoken::EncodingKey::from_rsa_der(&pkcs1))
}

/// The FCM sender: one per server.
pub struct Fcm {
    account: ServiceAccount,
    token_url: Uri,
    send_url: Uri,
    http: HttpClient,
    cached: Mutex<Option<(Arc<str>, Instant)>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Fcm {
    /// `token_url` overrides the service account's `token_uri`; `base_url` is where
    /// `/v1/projects/{project}/messages:send` lives.
    pub fn new(
        account: ServiceAccount,
        token_url: Option<&str>,
        base_url: &str,
        http: HttpClient,
    ) -> Result<Self, String> {
        let token_url: Uri = token_url
            .unwrap_or(&account.token_uri)
            .parse()
            .map_err(|_| "the token endpoint is not a URL".to_owned())?;
        let send_url: Uri =
            format!("{}/v1/projects/{}/messages:send", base_url.trim_end_matches('/'), account.project_id)
                .parse()
                .map_err(|_| "push.fcm_base_url is not a URL".to_owned())?;
        Ok(Self { account, token_url, send_url, http, cached: Mutex::new(None) })
    }

    /// A valid access token, from the cache or freshly bought.
    async fn access_token(&self) -> Result<Arc<str>, Outcome> {
        if let Some((token, until)) = self.cached.lock().as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let assertion = self
            .account
            .assertion(&self.token_url.to_string())
            .map_err(|e| Outcome::Failed(format!("signing the assertion: {e}")))?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let request = Request::post(self.token_url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| Outcome::Failed(format!("token request: {e}")))?;
        let reply = self.http.send(request).await.map_err(|_| Outcome::Retry(None))?;
        match reply.outcome() {
            Outcome::Delivered => {}
            Outcome::Failed(why) => return Err(Outcome::Failed(format!("token endpoint: {why}"))),
            other => return Err(other),
        }
        let answer: TokenAnswer = serde_json::from_slice(&reply.body)
            .map_err(|e| Outcome::Failed(format!("token endpoint answered no access_token: {e}")))?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let token: Arc<str> = answer.access_token.into();
        *self.cached.lock() = Some((token.clone(), Instant::now() + lifetime.saturating_sub(RENEW_BEFORE)));
        Ok(token)
    }

    /// One try at delivering `message` (FCM's `message` object, `token` set) .
    pub async fn send_once(&self, message: &Value) -> Outcome {
        let access = match self.access_token().await {
            Ok(token) => token,
            Err(outcome) => return outcome,
        };
        let body = json!({ "message": message }).to_string();
        let request = match Request::post(self.send_url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::AUTHORIZATION, format!("Bearer {access}"))
            .body(Full::new(Bytes::from(body)))
        {
            Ok(request) => request,
            Err(e) => return Outcome::Failed(format!("send request: {e}")),
        };
        let reply = match self.http.send(request).await {
            Ok(reply) => reply,
            Err(_) => return Outcome::Retry(None),
        };
        match reply.status.as_u16() {
            // The token was revoked or ran out early: buy another and try again.
            401 => {
                *self.cached.lock() = None;
                Outcome::Retry(None)
            }
            404 => Outcome::Gone,
            400 if error_code(&reply.body).as_deref() == Some("UNREGISTERED") => Outcome::Gone,
            _ => reply.outcome(),
        }
    }
}

/// FCM's `errorCode` in an error answer's details.
fn error_code(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let details = value.pointer("/error/details")?.as_array()?;
    details.iter().find_map(|d| d.get("errorCode").and_then(Value::as_str)).map(str::to_owned)
}

/// FCM's `message` for one device: `data` values must be strings, so others go as JSON text.
pub fn message(token: &str, title: &str, body: &str, data: &Value, ttl_secs: u32) -> Value {
    let data: serde_json::Map<String, Value> = match data {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), Value::String(text))
            })
            .collect(),
        _ => serde_json::Map::new(),
    };
    json!({
        "token": token,
        "notification": { "title": title, "body": body },
        "data": data,
        "android": { "priority": "HIGH", "ttl": format!("{ttl_secs}s") },
        "apns": { "headers": { "apns-priority": "10" } },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_service_accounts_are_one_line() {
        assert!(ServiceAccount::load("/nonexistent/sa.json").err().unwrap().starts_with("cannot read"));
        assert!(ServiceAccount::load("{\"x\":1}").err().unwrap().starts_with("not a service-account"));
        let no_key = r#"{"client_email":"a@b","project_id":"p","private_key":"nope"}"#;
        assert_eq!(ServiceAccount::load(no_key).err().as_deref(), Some("private_key is not a PEM RSA private key"));
        let garbage = r#"{"client_email":"a@b","project_id":"p","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#;
        assert!(ServiceAccount::load(garbage).is_err());
    }

    #[test]
    fn data_values_become_strings() {
        let m = message("t", "a", "b", &json!({"n": 1, "s": "x", "o": {"k": true}}), 60);
        assert_eq!(m["data"], json!({"n": "1", "s": "x", "o": "{\"k\":true}"}));
        assert_eq!(m["android"]["ttl"], "60s");
    }

    #[test]
    fn unregistered_is_found_in_the_details() {
        let body = br#"{"error":{"code":400,"status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;
        assert_eq!(error_code(body).as_deref(), Some("UNREGISTERED"));
        assert_eq!(error_code(b"{}"), None);
    }
}
