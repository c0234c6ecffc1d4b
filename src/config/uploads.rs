//! The `uploads` section: profile pictures and banners (SPEC §6 "Sizes", "Rate limits").

use serde::{Deserialize, Serialize};

/// Caps and rate of Hestia's picture uploads. Sizes in bytes, MiB as Hestia's multer counted them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadsConfig {
    /// Largest profile picture (`PATCH /users/profile-picture`), in bytes; past it the upload is
    /// cut off with 413. Default 5 242 880 (5 MiB). Env `SWITCHBOARD_UPLOADS_AVATAR_MAX_BYTES`.
    pub avatar_max_bytes: u64,
    /// Largest profile banner (`PATCH /users/profile-banner`), in bytes. Default 8 388 608
    /// (8 MiB). Env `SWITCHBOARD_UPLOADS_BANNER_MAX_BYTES`.
    pub banner_max_bytes: u64,
    /// Picture changes (uploads and URLs) per account per minute; 0 turns the limit off.
    /// Default 30. Env `SWITCHBOARD_UPLOADS_PER_MINUTE`.
    pub per_account_per_minute: u32,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self { avatar_max_bytes: 5 * 1024 * 1024, banner_max_bytes: 8 * 1024 * 1024, per_account_per_minute: 30 }
    }
}
