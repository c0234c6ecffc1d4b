//! Local push services for tests: an FCM HTTP v1 receiver (OAuth2 token endpoint + send) that
//! checks the RS256 assertion with the test service account's public key, and a Web Push
//! endpoint that checks the VAPID token; plus the subscription side of Web Push (keys and
//! RFC 8291 decryption), as a browser would do it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;

/// The test service account's key (RSA 2048, made for these tests only).
pub const SA_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDHEgWQFjfT0Mql\nGSf58osHI98GlI75+BNScZnUfTKA+nATSqLqtPBsysl0xuLnohluRgxHQyCnC3t9\nAGDP9nJj5CAGLMFZGIP1+vgvNWcNNeWvx7+YXrTNddmBw6Xp2IXWwR4IfYbcrAeg\nkvu9VijH08R+CedLLEs3So2hBETScmWu0OZ42rttKAp+g80SDWubIkp4AQEP79S4\n94SZipd+0at4HlCtHzUqyT3tiijbtnYqvwtyPwICIbYtndiVN3jxY9EKs6t9Ifm9\nhLR673yYzMHNkkdo3+vIlqilHwyin6CZhe+BR1bUukDihtBm4crIKeRUvgSRi1RR\nqc6eLZ7tAgMBAAECggEAAseTOSSSRtHIw+mNbRhFotsi81QniJZ96z4HqZejmPjw\n5S1lh8pF0Xhlu+IbYM7FikxjQgB43X7pIcDxA8kGEQkqUvkU1wy4VPraNHXgrebK\n1vuT8YmgU9PELni/9uYC0mbpEjHHLGAg4s1X7gLHYtOSZWHNL2Jw3MFcp7r9R1ny\nwcauuaeqQvWfpd623QWP8f0vxG+icFZnH/mUwXR73zjEkrUNhGj9s4Api9qOukn+\nonMkt2duyb+SD1hbvSpjUf2en4ouxLCfOniljkle8rAJHdnChxu1/yyFau0UHPx1\n4cb4IWlpLhoRrcin/XuBg9WkvojMhpNkmkJXeGHgEQKBgQDrMN3eMRk8u+5Iaxxw\nt23YG0u9Ai0urL5XHCV0et89Y5mrnzF9sOCQc1iHP6D5pSM8zrZUQxo9G2IWT6uH\nC5m91iRLc0bsrzlinVSAz9dnVdqQGtqjUpn7koriBjaPelLKFiIHYz5/scpMj4p/\nHkmDlvRCyJWxmXFrJpXaK6NFHQKBgQDYrwROkVzCbaZpypDc0ABzbf11z1SFcGjS\nq1Vj92++D8GafUsKA63inWogTlhdWIzDsOipCw9cVqrKKDKve3P1PIJf/VtcY6HJ\nzi9O8JxRlEQxru226gc+XXyP056xOHVwf7+ZZjkqdB0IfAQY66ua9C2oxXjai8Ph\n8gABNPeoEQKBgQDOCy6kxPDuM1prGWN+IETcSfWNbcW1mWLbn+30YN0IxCRRpZLP\nIdFq25KYUpctfo4jbJlxsqPfGwlQsJV+JxyWom+DpkdhfZVRnrH0c6GrhxyGmPAo\nm2oJavW/VGAiTLERGFjRjhGn/1NSxYI5IYiX/vyZMW9rexlRHSm1S/uqxQKBgAIE\nTwP0MmrU3nGpowOLJBXu9ib8kQrU6wTa92aAzRd1yhWICQTE1/99+5jlYckso9LG\neMPqCHCRlfFfwmkDuyaTM5t1Hj6T5tOcCbCwaKQRvzi/KhNDxmF8OUaVb6qyndU4\nOy5QV0Pf5M1JajhZKTW+BBbID8Ho/x/BQuK//XYhAoGBAMT7aOAsRnqEgYgJeiX3\ngF0TZkLgpHd3aq1AqUpEEUd8gvuvt8ib5UICLUdflDpfGnGDaTrAICanyqZMYOWP\nEqUeMOve0Dk3jK/GeozqfqpXf47zDVCbN41fxtKV18CyihN+YYrgG63vjtuzdykJ\n4rptuQoBGXBwYb5zN88V43XK\n-----END PRIVATE KEY-----\n";
/// Its public half, PKCS#1 DER in base64, what the receiver checks assertions with.
const SA_PUBLIC_KEY: &str = "MIIBCgKCAQEAxxIFkBY309DKpRkn+fKLByPfBpSO+fgTUnGZ1H0ygPpwE0qi6rTwbMrJdMbi56IZbkYMR0Mgpwt7fQBgz/ZyY+QgBizBWRiD9fr4LzVnDTXlr8e/mF60zXXZgcOl6diF1sEeCH2G3KwHoJL7vVYox9PEfgnnSyxLN0qNoQRE0nJlrtDmeNq7bSgKfoPNEg1rmyJKeAEBD+/UuPeEmYqXftGreB5QrR81Ksk97Yoo27Z2Kr8Lcj8CAiG2LZ3YlTd48WPRCrOrfSH5vYS0eu98mMzBzZJHaN/ryJaopR8Mop+gmYXvgUdW1LpA4obQZuHKyCnkVL4EkYtUUanOni2e7QIDAQAB";
pub const SA_EMAIL: &str = "push-test@switchboard-test.iam.gserviceaccount.com";
pub const PROJECT: &str = "switchboard-test";
/// What the token endpoint hands out and the send endpoint wants.
const ACCESS_TOKEN: &str = "ya29.test-access-token";

/// What a receiver got.
#[derive(Debug, Clone)]
pub enum Received {
    /// An FCM message (the `message` object), sent with the right bearer token.
    Fcm(Value),
    /// A Web Push request to `/wp/{id}`: its headers and encrypted body.
    WebPush { id: String, headers: HeaderMap, body: Bytes },
}

#[derive(Clone)]
struct Shared {
    tx: mpsc::UnboundedSender<Received>,
    /// Requests seen per key (FCM token or Web Push id), for scripted failures.
    hits: Arc<parking_lot::Mutex<HashMap<String, u32>>>,
    token_url: Arc<str>,
    /// Token requests answered.
    token_calls: Arc<std::sync::atomic::AtomicU32>,
}

/// Both services on one local port. Scripts by name: an FCM token or Web Push id starting with
/// `gone` is unregistered (FCM 404 `UNREGISTERED`, Web Push 410); one starting with `flaky`
/// fails with 500 the first time and is accepted the second; an FCM token starting with `busy`
/// gets 429 with `Retry-After: 1` the first time.
pub struct Receiver {
    pub addr: SocketAddr,
    pub rx: mpsc::UnboundedReceiver<Received>,
    shared: Shared,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            tx,
            hits: Default::default(),
            token_url: format!("http://{addr}/token").into(),
            token_calls: Default::default(),
        };
        let app = Router::new()
            .route("/token", post(token))
            .route("/v1/projects/{project}/messages:send", post(send))
            .route("/wp/{id}", post(web_push))
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, rx, shared }
    }

    /// The service account JSON whose `token_uri` is this receiver.
    pub fn service_account(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "test-key-1",
            "private_key": SA_PRIVATE_KEY,
            "client_email": SA_EMAIL,
            "token_uri": &*self.shared.token_url,
        })
        .to_string()
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn endpoint(&self, id: &str) -> String {
        format!("http://{}/wp/{id}", self.addr)
    }

    pub fn token_calls(&self) -> u32 {
        self.shared.token_calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The next thing received, within 10 s.
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(std::time::Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a push within 10 s")
            .unwrap()
    }

    /// Nothing arrives for `ms` milliseconds.
    pub async fn assert_quiet(&mut self, ms: u64) {
        if let Ok(Some(got)) = tokio::time::timeout(std::time::Duration::from_millis(ms), self.rx.recv()).await {
            panic!("expected no push, got {got:?}");
        }
    }

    fn hit(shared: &Shared, key: &str) -> u32 {
        let mut hits = shared.hits.lock();
        let n = hits.entry(key.to_owned()).or_default();
        *n += 1;
        *n
    }
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, axum::Json(json!({"error": why}))).into_response()
}

/// OAuth2 JWT-bearer: checks the assertion's RS256 signature and claims.
async fn token(State(shared): State<Shared>, body: String) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return refuse(StatusCode::BAD_REQUEST, "grant_type");
    }
    let Some(assertion) = form.get("assertion") else { return refuse(StatusCode::BAD_REQUEST, "assertion") };
    let der = STANDARD.decode(SA_PUBLIC_KEY).unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_der(&der);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[&*shared.token_url]);
    validation.set_issuer(&[SA_EMAIL]);
    let Ok(data) = jsonwebtoken::decode::<Value>(assertion, &key, &validation) else {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_grant");
    };
    if data.claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging"
        || data.header.kid.as_deref() != Some("test-key-1")
    {
        return refuse(StatusCode::BAD_REQUEST, "scope or kid");
    }
    shared.token_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    axum::Json(json!({"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"})).into_response()
}

/// FCM's send: wants the bearer token, a message with a token, a notification and string data.
async fn send(State(shared): State<Shared>, Path(project): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if project != PROJECT {
        return refuse(StatusCode::NOT_FOUND, "project");
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
    if bearer != Some(&format!("Bearer {ACCESS_TOKEN}")) {
        return refuse(StatusCode::UNAUTHORIZED, "bearer");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else { return refuse(StatusCode::BAD_REQUEST, "json") };
    let message = body["message"].clone();
    let Some(token) = message["token"].as_str().map(str::to_owned) else {
        return refuse(StatusCode::BAD_REQUEST, "token");
    };
    if message["data"].as_object().is_some_and(|d| d.values().any(|v| !v.is_string())) {
        return refuse(StatusCode::BAD_REQUEST, "data values must be strings");
    }
    let n = Receiver::hit(&shared, &token);
    if token.starts_with("gone") {
        let details =
            json!([{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]);
        let error = json!({"error": {"code": 404, "status": "NOT_FOUND", "details": details}});
        return (StatusCode::NOT_FOUND, axum::Json(error)).into_response();
    }
    if token.starts_with("flaky") && n == 1 {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "try again");
    }
    if token.starts_with("busy") && n == 1 {
        let mut answer = refuse(StatusCode::TOO_MANY_REQUESTS, "quota");
        answer.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        return answer;
    }
    let _ = shared.tx.send(Received::Fcm(message));
    axum::Json(json!({"name": format!("projects/{PROJECT}/messages/{n}")})).into_response()
}

/// A Web Push endpoint: checks VAPID (ES256 JWT for this origin, its key in `k=`) and headers.
async fn web_push(State(shared): State<Shared>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if header("content-encoding") != "aes128gcm" || header("ttl").parse::<u64>().is_err() {
        return refuse(StatusCode::BAD_REQUEST, "content-encoding or TTL");
    }
    let auth = header("authorization");
    let Some((t, k)) = auth.strip_prefix("vapid t=").and_then(|rest| rest.split_once(", k=")) else {
        return refuse(StatusCode::UNAUTHORIZED, "vapid");
    };
    let key = URL_SAFE_NO_PAD.decode(k).unwrap_or_default();
    if key.len() != 65 {
        return refuse(StatusCode::UNAUTHORIZED, "k");
    }
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&key[1..33]),
        &URL_SAFE_NO_PAD.encode(&key[33..]),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    let origin = shared.token_url.trim_end_matches("/token").to_owned();
    validation.set_audience(&[origin]);
    match jsonwebtoken::decode::<Value>(t, &decoding, &validation) {
        Ok(data) if data.claims["sub"].as_str().is_some_and(|s| s.starts_with("mailto:")) => {}
        _ => return refuse(StatusCode::UNAUTHORIZED, "vapid token"),
    }
    let n = Receiver::hit(&shared, &id);
    if id.starts_with("gone") {
        return StatusCode::GONE.into_response();
    }
    if id.starts_with("flaky") && n == 1 {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let _ = shared.tx.send(Received::WebPush { id, headers, body });
    StatusCode::CREATED.into_response()
}

/// A browser's side of a subscription: its key pair and auth secret.
pub struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Browser {
    pub fn new() -> Self {
        let secret = loop {
            if let Ok(k) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break k;
            }
        };
        Self { secret, auth: rand::random() }
    }

    /// `keys.p256dh`, base64url.
    pub fn p256dh(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.public_key().to_encoded_point(false).as_bytes())
    }

    /// `keys.auth`, base64url.
    pub fn auth(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.auth)
    }

    /// Decrypts an `aes128gcm` body (RFC 8291 §3, RFC 8188) and parses the JSON inside.
    pub fn decrypt(&self, body: &[u8]) -> Value {
        let salt = &body[..16];
        let idlen = body[20] as usize;
        let sender_bytes = &body[21..21 + idlen];
        let sender = p256::PublicKey::from_sec1_bytes(sender_bytes).unwrap();
        let shared = p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), sender.as_affine());
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(self.secret.public_key().to_encoded_point(false).as_bytes());
        info.extend_from_slice(sender_bytes);
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&self.auth), shared.raw_secret_bytes()).expand(&info, &mut ikm).unwrap();
        let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek).unwrap();
        prk.expand(b"Content-Encoding: nonce\0", &mut nonce).unwrap();
        let cipher = aes_gcm::Aes128Gcm::new_from_slice(&cek).unwrap();
        let mut plain = cipher.decrypt(aes_gcm::Nonce::from_slice(&nonce), &body[21 + idlen..]).unwrap();
        assert_eq!(plain.pop(), Some(2), "the last record's delimiter");
        serde_json::from_slice(&plain).unwrap()
    }
}
