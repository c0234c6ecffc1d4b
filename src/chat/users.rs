//! Users and profiles: lookups, bio, username, status, public key, pictures, statuses on
//! socket connect and disconnect, and account deletion (SPEC §6).

use super::{Chat, ChatError, Picture, PictureKind, User};
use crate::store::{self, chat::ProfileField};

/// Statuses a user may set (SPEC §6); a new account is `offline`.
pub const STATUSES: [&str; 3] = ["active", "offline", "do_not_disturb"];
/// The longest bio, in characters (Hestia's rule).
pub const MAX_BIO_CHARS: usize = 500;
/// The longest public key, in bytes (SPEC §6: 8 KiB).
pub const MAX_PUBLIC_KEY_BYTES: usize = 8 * 1024;
/// The longest picture URL a client may give, in bytes.
pub const MAX_PICTURE_URL_BYTES: usize = 2048;
/// Where uploaded pictures are served from; a stored value starting so names an upload.
pub const UPLOADS_PREFIX: &str = "/uploads/";

fn not_found(e: store::Error) -> ChatError {
    match e {
        store::Error::NotFound => ChatError::NotFound("User not found"),
        e => e.into(),
    }
}

impl Chat {
    pub async fn user(&self, id: i64) -> Result<User, ChatError> {
        Ok(self.store().chat_user(id).await.map_err(not_found)?.into())
    }

    pub async fn user_by_username(&self, name: &str) -> Result<User, ChatError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(ChatError::NotFound("User not found"));
        }
        Ok(self.store().chat_user_by_username(name).await.map_err(not_found)?.into())
    }

    /// Sets the bio (at most 500 characters); `None` clears it.
    pub async fn set_bio(&self, me: i64, bio: Option<&str>) -> Result<User, ChatError> {
        if bio.is_some_and(|b| b.chars().count() > MAX_BIO_CHARS || b.contains('\0')) {
            return Err(ChatError::Invalid("Bio must be a string up to 500 characters."));
        }
        self.store().set_profile_field(me, ProfileField::Bio, bio).await.map_err(not_found)?;
        self.user(me).await
    }

    /// A new username, with registration's rules (3–32 characters, no spaces, control
    /// characters or `@`); 409 when another account has it.
    pub async fn set_username(&self, me: i64, name: &str) -> Result<User, ChatError> {
        let name = name.trim();
        if !(3..=32).contains(&name.chars().count()) {
            return Err(ChatError::Invalid("Username must be from 3 to 32 characters."));
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '@') {
            return Err(ChatError::Invalid("Username may not contain spaces, control characters or @."));
        }
        self.store().set_username(me, name).await.map_err(|e| match e {
            store::Error::Conflict(_) => ChatError::Conflict("Username already taken"),
            e => not_found(e),
        })?;
        self.user(me).await
    }

    /// One of [`STATUSES`], else 400 "Invalid status".
    pub async fn set_status(&self, me: i64, status: &str) -> Result<User, ChatError> {
        if !STATUSES.contains(&status) {
            return Err(ChatError::Invalid("Invalid status"));
        }
        if !self.store().set_chat_status(me, status, None).await? {
            return Err(ChatError::NotFound("User not found"));
        }
        self.user(me).await
    }

    /// The key clients encrypt to (end-to-end encryption is theirs); `None` clears it.
    pub async fn set_public_key(&self, me: i64, key: Option<&str>) -> Result<User, ChatError> {
        if key.is_some_and(|k| k.len() > MAX_PUBLIC_KEY_BYTES || k.contains('\0')) {
            return Err(ChatError::Invalid("Public key must be a string of at most 8 KiB."));
        }
        self.store().set_profile_field(me, ProfileField::PublicKey, key).await.map_err(not_found)?;
        self.user(me).await
    }

    /// Sets or clears a picture; returns the user and the stored upload it replaced (the caller
    /// removes that file). A client's URL must be https and at most 2048 bytes.
    pub async fn set_picture(
        &self,
        me: i64,
        kind: PictureKind,
        picture: Option<Picture>,
    ) -> Result<(User, Option<String>), ChatError> {
        let value = match picture {
            Some(Picture::Url(url)) => {
                check_picture_url(&url)?;
                Some(url)
            }
            Some(Picture::Upload(path)) => Some(path),
            None => None,
        };
        let field = match kind {
            PictureKind::Avatar => ProfileField::Picture,
            PictureKind::Banner => ProfileField::Banner,
        };
        let old = self.store().set_profile_field(me, field, value.as_deref()).await.map_err(not_found)?;
        let replaced = old.filter(|o| o.starts_with(UPLOADS_PREFIX) && Some(o) != value.as_ref());
        Ok((self.user(me).await?, replaced))
    }

    /// Deletes the account and all its chat data (SPEC §6) and closes its sockets; returns the
    /// stored uploads it had, for the caller to remove.
    pub async fn delete_user(&self, me: i64) -> Result<Vec<String>, ChatError> {
        let pictures = self.store().delete_chat_account(me).await.map_err(not_found)?;
        self.close_user_sockets(me);
        Ok(pictures.into_iter().filter(|p| p.starts_with(UPLOADS_PREFIX)).collect())
    }

    /// A socket of `me` connected: `offline` turns `active` (`do_not_disturb` stays).
    pub async fn socket_connected(&self, me: i64) -> Result<(), ChatError> {
        self.store().set_chat_status(me, "active", Some("offline")).await?;
        Ok(())
    }

    /// A socket of `me` closed (and left its rooms): if it was the last, `active` turns
    /// `offline`. A socket that joins meanwhile writes `active` after joining; if that write
    /// landed before this one, the second look sees it in the room and puts `active` back.
    pub async fn socket_disconnected(&self, me: i64) -> Result<(), ChatError> {
        if self.is_online(me) {
            return Ok(());
        }
        self.store().set_chat_status(me, "offline", Some("active")).await?;
        if self.is_online(me) {
            self.socket_connected(me).await?;
        }
        Ok(())
    }
}

/// An https URL of at most [`MAX_PICTURE_URL_BYTES`], with a host, no user info (a
/// `https://trusted.example@elsewhere/` points elsewhere than it reads) and no spaces or control
/// characters (never `http:`, `javascript:` or `data:`).
fn check_picture_url(url: &str) -> Result<(), ChatError> {
    const WHY: &str = "Picture URL must be an https URL of at most 2048 bytes.";
    let Some(rest) = url.get(..8).filter(|s| s.eq_ignore_ascii_case("https://")).map(|_| &url[8..]) else {
        return Err(ChatError::Invalid(WHY));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if url.len() > MAX_PICTURE_URL_BYTES
        || host.is_empty()
        || host.contains('@')
        || host.starts_with(':')
        || url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\' || c == '"' || c == '<' || c == '>')
    {
        return Err(ChatError::Invalid(WHY));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn picture_urls() {
        for ok in ["https://example.com/a.png", "HTTPS://cdn.example.com/x?y=1"] {
            assert!(super::check_picture_url(ok).is_ok(), "{ok}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        for bad in [
            "http://example.com/a.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "https://",
            "https:///path",
            "https://exa mple.com/",
            "https://example.com/\u{0}",
            "https://user:pw@example.com/a.png",
            "https://cdn.example.com@evil.example/a.png",
            "/uploads/avatars/x.png",
            long.as_str(),
        ] {
            assert!(super::check_picture_url(bad).is_err(), "{bad}");
        }
    }
}
