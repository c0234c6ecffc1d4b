//! Message contents at rest, with `ENCRYPTION_KEY` (as Hestia): AES-256-GCM, a fresh random
//! 96-bit nonce per message, AAD `"message"`. The server holds the key, so this protects a copy
//! of the database (a backup, a stolen disk), not the messages from whoever runs the server;
//! end-to-end encryption is the clients' business (`publicKey`).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const AAD: &[u8] = b"message";

/// A key that is not 64 hex characters.
#[derive(Debug, thiserror::Error)]
#[error("ENCRYPTION_KEY must be 64 hex characters (a 256-bit key)")]
pub struct KeyError;

/// The cipher for message contents.
#[derive(Clone)]
pub struct Cipher(Aes256Gcm);

impl Cipher {
    pub fn from_hex(hex_key: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| KeyError)?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| KeyError)?;
        Ok(Self(cipher))
    }

    /// (base64 ciphertext with its tag, base64 nonce).
    pub fn seal(&self, plain: &str) -> Option<(String, String)> {
        let nonce: [u8; 12] = rand::random();
        let sealed = self.0.encrypt(Nonce::from_slice(&nonce), Payload { msg: plain.as_bytes(), aad: AAD }).ok()?;
        Some((STANDARD.encode(sealed), STANDARD.encode(nonce)))
    }

    /// The text of [`Cipher::seal`]'s output; `None` when it does not open under this key.
    pub fn open(&self, sealed: &str, nonce: &str) -> Option<String> {
        let sealed = STANDARD.decode(sealed).ok()?;
        let nonce: [u8; 12] = STANDARD.decode(nonce).ok()?.try_into().ok()?;
        let plain = self.0.decrypt(Nonce::from_slice(&nonce), Payload { msg: &sealed, aad: AAD }).ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn round_trip_with_a_fresh_nonce_each_time() {
        let c = Cipher::from_hex(KEY).unwrap();
        let (a, na) = c.seal("héllo").unwrap();
        let (b, nb) = c.seal("héllo").unwrap();
        assert_ne!(na, nb);
        assert_ne!(a, b);
        assert!(!a.contains("llo"));
        assert_eq!(c.open(&a, &na).unwrap(), "héllo");
        assert_eq!(c.open(&a, &nb), None, "another nonce does not open it");
        let other = Cipher::from_hex(&KEY.replace("00", "ff")).unwrap();
        assert_eq!(other.open(&a, &na), None, "another key does not open it");
    }

    #[test]
    fn bad_keys() {
        assert!(Cipher::from_hex("abc").is_err());
        assert!(Cipher::from_hex(&"zz".repeat(32)).is_err());
        assert!(Cipher::from_hex(&"00".repeat(16)).is_err(), "128 bits is not AES-256");
    }
}
