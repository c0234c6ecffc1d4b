//! Authentication shared by every surface: Pusher-style HMAC signatures (channel auth, user
//! sign-in, signed HTTP requests), account JWTs, passwords and opaque tokens. Every compare of a
//! secret, signature or token hash is constant-time.

pub mod jwt;
pub mod opaque;
pub mod password;
pub mod pusher;

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Lowercase hex HMAC-SHA256 of `text` under `secret`.
pub fn hmac_hex(secret: &str, text: &str) -> String {
    hex::encode(hmac_bytes(secret, text.as_bytes()))
}

fn hmac_bytes(secret: &str, text: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail; the fallback keeps clippy's
    // no-expect rule without a panic path.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable_mac());
    mac.update(text);
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_mac() -> HmacSha256 {
    match HmacSha256::new_from_slice(b"") {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts any key length"),
    }
}

/// Whether `signature_hex` is the HMAC of `text` under `secret`, compared in constant time.
/// Upper- or lowercase hex is accepted; anything else is a mismatch.
pub fn verify_hmac_hex(secret: &str, text: &[u8], signature_hex: &str) -> bool {
    let Ok(given) = hex::decode(signature_hex) else {
        return false;
    };
    let expected = hmac_bytes(secret, text);
    given.len() == expected.len() && bool::from(expected.ct_eq(&given))
}

/// A token's text as issued to its holder (an access, refresh, channel or setup token): it goes
/// into one answer and nowhere else, so `Debug` shows `<redacted>` and reading it takes
/// [`RawToken::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct RawToken(String);

impl RawToken {
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The text, for the answer that hands it over.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RawToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Seconds since the Unix epoch: the clock of signed requests' `auth_timestamp` and of JWTs'
/// `iat` and `exp`.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Constant-time string equality (for secrets presented directly).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
