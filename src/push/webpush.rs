//! Web Push: the payload encrypted for one subscription (RFC 8291, `aes128gcm` of RFC 8188) and
//! the VAPID identity that signs every request (RFC 8292).

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

/// The record size announced in the header: one record holds any payload we send.
const RECORD_SIZE: u32 = 4096;
/// The largest plaintext one record carries: 4096 less the tag (16) and the delimiter (1).
pub const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - 17;

/// Why a subscription's keys are unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("{}", self.message())]
    P256dh,
    #[error("{}", self.message())]
    Auth,
}

impl KeyError {
    /// The message, for a surface's error format.
    pub fn message(&self) -> &'static str {
        match self {
            Self::P256dh => "keys.p256dh must be an uncompressed P-256 public key in base64url",
            Self::Auth => "keys.auth must be 16 bytes in base64url",
        }
    }
}

/// A subscription's keys, decoded.
pub struct ClientKeys {
    public: PublicKey,
    public_bytes: Vec<u8>,
    auth: [u8; 16],
}

impl ClientKeys {
    /// Parses the browser's `keys.p256dh` (65 bytes, uncompressed point) and `keys.auth` (16
    /// bytes), base64url with or without padding.
    pub fn parse(p256dh: &str, auth: &str) -> Result<Self, KeyError> {
        let public_bytes = decode_b64url(p256dh).ok_or(KeyError::P256dh)?;
        if public_bytes.len() != 65 || public_bytes[0] != 4 {
            return Err(KeyError::P256dh);
        }
        let public = PublicKey::from_sec1_bytes(&public_bytes).map_err(|_| KeyError::P256dh)?;
        let auth: [u8; 16] = decode_b64url(auth).and_then(|a| a.try_into().ok()).ok_or(KeyError::Auth)?;
        Ok(Self { public, public_bytes, auth })
    }
}

/// base64url, padded or not (browsers' `toJSON()` leaves padding out; some libraries keep it).
pub fn decode_b64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim().trim_end_matches('=')).ok()
}

/// A fresh P-256 secret from the process's random source.
pub fn random_secret() -> SecretKey {
    loop {
        // Fails only for 0 or values ≥ the group order: a chance of about 2^-32.
        if let Ok(key) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
            return key;
        }
    }
}

fn public_bytes(key: &PublicKey) -> Vec<u8> {
    key.to_encoded_point(false).as_bytes().to_vec()
}

/// Encrypts `plaintext` (at most [`MAX_PLAINTEXT`] bytes) for `keys`: the body of the push
/// request, header (salt, record size, the sender's ephemeral key) and one record.
pub fn encrypt(keys: &ClientKeys, plaintext: &[u8]) -> Option<Vec<u8>> {
    encrypt_with(keys, plaintext, &random_secret(), rand::random::<[u8; 16]>())
}

fn encrypt_with(keys: &ClientKeys, plaintext: &[u8], ephemeral: &SecretKey, salt: [u8; 16]) -> Option<Vec<u8>> {
    if plaintext.len() > MAX_PLAINTEXT {
        return None;
    }
    let sender_public = public_bytes(&ephemeral.public_key());
    let shared = p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), keys.public.as_affine());
    // RFC 8291 §3.4: the input keying material binds both public keys and the auth secret.
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(&keys.public_bytes);
    key_info.extend_from_slice(&sender_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&keys.auth), shared.raw_secret_bytes()).expand(&key_info, &mut ikm).ok()?;
    // RFC 8188 §2.2–2.3: the content encryption key and nonce (one record, sequence 0).
    let prk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
    let mut cek = [0u8; 16];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek).ok()?;
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce).ok()?;
    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(2); // the last record's delimiter
    let cipher = aes_gcm::Aes128Gcm::new_from_slice(&cek).ok()?;
    let sealed = cipher.encrypt(aes_gcm::Nonce::from_slice(&nonce), record.as_slice()).ok()?;
    let mut body = Vec::with_capacity(16 + 4 + 1 + sender_public.len() + sealed.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(sender_public.len() as u8);
    body.extend_from_slice(&sender_public);
    body.extend_from_slice(&sealed);
    Some(body)
}

/// The server's VAPID key pair: it signs a short JWT per push service origin.
pub struct Vapid {
    signing: jsonwebtoken::EncodingKey,
    /// The public key, uncompressed, base64url: what `applicationServerKey` and `k=` carry.
    public: String,
    subject: String,
}

/// File in the data dir that keeps a generated VAPID private key.
pub const VAPID_FILE: &str = "vapid_private_key";

impl Vapid {
    /// The configured key (base64url, 32 bytes), else the one kept in the data dir, else a new
    /// one written there (mode 0600). Errors are one line for the operator.
    pub fn load_or_create(configured: Option<&str>, data_dir: &Path, subject: &str) -> Result<Self, String> {
        let parse = |text: &str| {
            decode_b64url(text)
                .and_then(|raw| SecretKey::from_slice(&raw).ok())
                .ok_or_else(|| "not a P-256 private key (32 bytes, base64url)".to_owned())
        };
        let secret = match configured {
            Some(text) => parse(text)?,
            None => {
                let path = data_dir.join(VAPID_FILE);
                match std::fs::read_to_string(&path) {
                    Ok(text) => parse(&text).map_err(|why| format!("{}: {why}", path.display()))?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        let secret = random_secret();
                        let text = URL_SAFE_NO_PAD.encode(secret.to_bytes());
                        crate::auth::jwt::write_private(&path, &text)
                            .map_err(|e| format!("cannot keep the VAPID key in {}: {e}", path.display()))?;
                        secret
                    }
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                }
            }
        };
        Self::from_secret(&secret, subject)
    }

    fn from_secret(secret: &SecretKey, subject: &str) -> Result<Self, String> {
        use p256::pkcs8::EncodePrivateKey;
        let der = secret.to_pkcs8_der().map_err(|e| format!("encoding the VAPID key: {e}"))?;
        Ok(Self {
            signing: jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()),
            public: URL_SAFE_NO_PAD.encode(public_bytes(&secret.public_key())),
            subject: subject.to_owned(),
        })
    }

    /// The public key in base64url, for clients' `applicationServerKey`.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// `Authorization` for a request to `endpoint`: `vapid t=<ES256 JWT>, k=<public key>`,
    /// the JWT's audience the endpoint's origin, valid 12 hours.
    pub fn authorization(&self, endpoint: &hyper::Uri) -> Option<String> {
        let origin = format!("{}://{}", endpoint.scheme_str()?, endpoint.authority()?);
        let claims = serde_json::json!({
            "aud": origin,
            "exp": crate::auth::unix_now() + 12 * 3600,
            "sub": self.subject,
        });
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        let token = jsonwebtoken::encode(&header, &claims, &self.signing).ok()?;
        Some(format!("vapid t={token}, k={}", self.public))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decrypts as a browser would (RFC 8291 from the receiving side).
    fn decrypt(ua_secret: &SecretKey, auth: &[u8; 16], body: &[u8]) -> Vec<u8> {
        let salt = &body[..16];
        assert_eq!(u32::from_be_bytes(body[16..20].try_into().unwrap()), RECORD_SIZE);
        let idlen = body[20] as usize;
        let sender = PublicKey::from_sec1_bytes(&body[21..21 + idlen]).unwrap();
        let ua_public = public_bytes(&ua_secret.public_key());
        let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), sender.as_affine());
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(&ua_public);
        info.extend_from_slice(&body[21..21 + idlen]);
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes()).expand(&info, &mut ikm).unwrap();
        let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek).unwrap();
        prk.expand(b"Content-Encoding: nonce\0", &mut nonce).unwrap();
        let cipher = aes_gcm::Aes128Gcm::new_from_slice(&cek).unwrap();
        let mut plain = cipher.decrypt(aes_gcm::Nonce::from_slice(&nonce), &body[21 + idlen..]).unwrap();
        assert_eq!(plain.pop(), Some(2), "last-record delimiter");
        plain
    }

    #[test]
    fn round_trip_through_a_receiver() {
        let ua = random_secret();
        let auth = rand::random::<[u8; 16]>();
        let keys = ClientKeys::parse(
            &URL_SAFE_NO_PAD.encode(public_bytes(&ua.public_key())),
            &format!("{}==", URL_SAFE_NO_PAD.encode(auth)),
        )
        .unwrap();
        let body = encrypt(&keys, b"{\"title\":\"hi\"}").unwrap();
        assert_eq!(decrypt(&ua, &auth, &body), b"{\"title\":\"hi\"}");
        assert!(encrypt(&keys, &vec![b'x'; MAX_PLAINTEXT + 1]).is_none());
    }

    #[test]
    fn rfc8291_example() {
        // RFC 8291 Appendix A: the same keys and salt give the same message.
        let d = |s: &str| decode_b64url(s).unwrap();
        let ua_public = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        let auth = "BTBZMqHH6r4Tts7J_aSIgg";
        let as_private = SecretKey::from_slice(&d("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        let salt: [u8; 16] = d("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let keys = ClientKeys::parse(ua_public, auth).unwrap();
        let body = encrypt_with(&keys, b"When I grow up, I want to be a watermelon", &as_private, salt).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(ClientKeys::parse("not base64!", "AAAAAAAAAAAAAAAAAAAAAA").err(), Some(KeyError::P256dh));
        let point = URL_SAFE_NO_PAD.encode([4u8; 65]);
        assert_eq!(ClientKeys::parse(&point, "AAAAAAAAAAAAAAAAAAAAAA").err(), Some(KeyError::P256dh), "off the curve");
        let good = URL_SAFE_NO_PAD.encode(public_bytes(&random_secret().public_key()));
        assert_eq!(ClientKeys::parse(&good, "AAAA").err(), Some(KeyError::Auth));
    }

    #[test]
    fn vapid_keys_are_kept_and_sign() {
        let dir = tempfile::tempdir().unwrap();
        let a = Vapid::load_or_create(None, dir.path(), "mailto:a@example.com").unwrap();
        let b = Vapid::load_or_create(None, dir.path(), "mailto:a@example.com").unwrap();
        assert_eq!(a.public_key(), b.public_key(), "generated once");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(VAPID_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let auth = a.authorization(&"https://push.example.net/x/y".parse().unwrap()).unwrap();
        let (t, k) = auth.strip_prefix("vapid t=").unwrap().split_once(", k=").unwrap();
        assert_eq!(k, a.public_key());
        let key = decode_b64url(k).unwrap();
        let x = URL_SAFE_NO_PAD.encode(&key[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&key[33..]);
        let decoding = jsonwebtoken::DecodingKey::from_ec_components(&x, &y).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&["https://push.example.net"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(t, &decoding, &validation).unwrap().claims;
        assert_eq!(claims["sub"], "mailto:a@example.com");
        assert!(Vapid::load_or_create(Some("short"), dir.path(), "mailto:a@b").is_err());
    }
}
