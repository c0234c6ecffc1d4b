//! Channel names and kinds: the only place a channel name is parsed (SPEC §1).

use std::fmt;
use std::sync::Arc;

/// Longest channel name accepted (SPEC §1).
pub const MAX_NAME_LEN: usize = 164;
/// Prefix of the per-user channel that `sendToUser` publishes to.
pub const USER_PREFIX: &str = "#server-to-user-";

/// 1–164 chars of `[A-Za-z0-9_\-=@,.;]`, or `#server-to-user-{id}`. Past a surface a channel is
/// never a `&str`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

/// What a channel's prefix makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Public,
    Private,
    Presence,
    /// `private-encrypted-`: payloads are end-to-end encrypted; the server relays them unread.
    Encrypted,
    /// `#server-to-user-{id}`: only the server publishes there, only signed-in users receive.
    User,
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelNameError {
    #[error("channel name must not be empty")]
    Empty,
    #[error("channel name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error("channel name may only contain A-Z, a-z, 0-9, _ - = @ , . ;")]
    BadCharacter,
}

impl ChannelName {
    /// Parses a name a client may subscribe to or an API may publish to.
    pub fn parse(raw: &str) -> Result<Self, ChannelNameError> {
        Self::validate(raw)?;
        Ok(Self(raw.into()))
    }

    /// Parses a name the HTTP API may publish to: also `#server-to-user-{id}`.
    pub fn parse_for_publish(raw: &str) -> Result<Self, ChannelNameError> {
        match raw.strip_prefix(USER_PREFIX) {
            Some(user) if !user.is_empty() && user.len() <= crate::core::MAX_USER_ID_LEN => Ok(Self(raw.into())),
            Some(_) => Err(ChannelNameError::TooLong),
            None => Self::parse(raw),
        }
    }

    /// The channel that reaches every connection of a signed-in user.
    pub fn for_user(user_id: &str) -> Self {
        Self(format!("{USER_PREFIX}{user_id}").into())
    }

    fn validate(raw: &str) -> Result<(), ChannelNameError> {
        if raw.is_empty() {
            return Err(ChannelNameError::Empty);
        }
        if raw.len() > MAX_NAME_LEN {
            return Err(ChannelNameError::TooLong);
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-=@,.;".contains(&b)) {
            return Err(ChannelNameError::BadCharacter);
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_arc(&self) -> &Arc<str> {
        &self.0
    }

    pub fn kind(&self) -> ChannelKind {
        let n = &*self.0;
        if n.starts_with("private-encrypted-") {
            ChannelKind::Encrypted
        } else if n.starts_with("private-") {
            ChannelKind::Private
        } else if n.starts_with("presence-") {
            ChannelKind::Presence
        } else if n.starts_with(USER_PREFIX) {
            ChannelKind::User
        } else {
            ChannelKind::Public
        }
    }

    /// `cache-`, `private-cache-`, `presence-cache-`, `private-encrypted-cache-`: the last
    /// event is kept and replayed to new subscribers.
    pub fn is_cache(&self) -> bool {
        let n = &*self.0;
        n.starts_with("cache-")
            || n.starts_with("private-cache-")
            || n.starts_with("presence-cache-")
            || n.starts_with("private-encrypted-cache-")
    }

    /// Whether subscribing needs a signature.
    pub fn needs_auth(&self) -> bool {
        matches!(self.kind(), ChannelKind::Private | ChannelKind::Presence | ChannelKind::Encrypted)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kinds() {
        let k = |n: &str| ChannelName::parse(n).unwrap().kind();
        assert_eq!(k("my-channel"), ChannelKind::Public);
        assert_eq!(k("private-a"), ChannelKind::Private);
        assert_eq!(k("presence-a"), ChannelKind::Presence);
        assert_eq!(k("private-encrypted-a"), ChannelKind::Encrypted);
        assert_eq!(k("cache-a"), ChannelKind::Public);
        assert!(ChannelName::parse("private-encrypted-cache-a").unwrap().is_cache());
        assert!(ChannelName::parse("presence-cache-a").unwrap().is_cache());
        assert!(!ChannelName::parse("cachex").unwrap().is_cache());
    }

    #[test]
    fn limits() {
        assert_eq!(ChannelName::parse(""), Err(ChannelNameError::Empty));
        assert!(ChannelName::parse(&"a".repeat(164)).is_ok());
        assert_eq!(ChannelName::parse(&"a".repeat(165)), Err(ChannelNameError::TooLong));
        assert_eq!(ChannelName::parse("a b"), Err(ChannelNameError::BadCharacter));
        assert_eq!(ChannelName::parse("#server-to-user-1"), Err(ChannelNameError::BadCharacter));
        assert!(ChannelName::parse_for_publish("#server-to-user-1").is_ok());
        assert!(ChannelName::parse("a_-=@,.;Z9").is_ok());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_the_charset(s in ".{0,200}") {
            if let Ok(name) = ChannelName::parse(&s) {
                prop_assert!(name.as_str().len() <= MAX_NAME_LEN);
                prop_assert!(name.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b"_-=@,.;".contains(&b)));
            }
        }
    }
}
