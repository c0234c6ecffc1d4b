//! Opaque bearer tokens (channel tokens, refresh tokens, the setup token): 256 random bits as
//! 64 lowercase hex characters, stored only as their SHA-256. A token is high-entropy, so a fast
//! hash is enough (nothing to guess from it), and lookups go by the hash; the row found is then
//! compared with the presented token's hash in constant time.

use rand::Rng;
use sha2::{Digest, Sha256};

use super::{RawToken, secrets_equal};

/// Characters of an issued token.
pub const TOKEN_CHARS: usize = 64;

/// A fresh token: 32 bytes from the OS-seeded generator, hex.
pub fn generate() -> RawToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    RawToken::new(hex::encode(bytes))
}

/// Whether `token` has the form of an issued one; anything else is refused without a lookup.
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_CHARS && token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The SHA-256 of a token, hex: what the store keeps and looks up by.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a stored hash is the hash of `token`, compared in constant time.
pub fn matches(stored_hash: &str, token: &str) -> bool {
    secrets_equal(stored_hash, &hash(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_hashes_match_only_their_token() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "<redacted>");
        let (a, b) = (a.expose(), b.expose());
        assert!(well_formed(a) && well_formed(b));
        assert!(matches(&hash(a), a));
        assert!(!matches(&hash(a), b));
        assert_eq!(hash(a).len(), 64);
        for bad in ["", "abc", &a.to_uppercase(), &format!("{a}0"), &a[1..], &"g".repeat(64), "' OR '1'='1"] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
