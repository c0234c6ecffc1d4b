//! Profile pictures and banners (SPEC §6, §10): an upload is streamed to a temporary file under
//! the data dir and cut off at its cap, its type sniffed and its declared dimensions checked from
//! the first bytes, then the whole file decoded on a blocking thread (a few at a time) before it
//! is renamed to a name the server chose. The client's file name and declared type are never
//! used. Files live in `<data_dir>/uploads/avatars/` and `…/banners/` as `<32 hex>.<ext>`.
//!
//! A service: no HTTP types here. The Hestia surface parses multipart and answers; the chat
//! service keeps which file is whose.

mod sniff;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

pub use sniff::{ImageType, MAX_DIMENSION};

pub use crate::chat::PictureKind;
use crate::chat::UPLOADS_PREFIX;

use crate::config::UploadsConfig;
use crate::ratelimit::RateLimiter;

/// The directory under `<data_dir>/uploads/` and the URL segment under `/uploads/` of `kind`.
pub fn dir(kind: PictureKind) -> &'static str {
    match kind {
        PictureKind::Avatar => "avatars",
        PictureKind::Banner => "banners",
    }
}

fn kind_of_dir(segment: &str) -> Option<PictureKind> {
    [PictureKind::Avatar, PictureKind::Banner].into_iter().find(|k| dir(*k) == segment)
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Past the kind's cap (413).
    #[error("File too large (at most {limit} bytes)")]
    TooLarge { limit: u64 },
    /// Not a PNG, JPEG, WebP or GIF by its content (400).
    #[error("Only image files are allowed!")]
    NotAnImage,
    /// The header declares more than 8192×8192 (400), before anything is decoded.
    #[error("Image dimensions {width}x{height} exceed 8192x8192")]
    TooManyPixels { width: u32, height: u32 },
    /// Truncated, damaged, carrying data past its end, or too costly to decode (400).
    #[error("Invalid or truncated image")]
    Invalid,
    /// Every decoding slot stayed taken for the bounded wait (503 with `Retry-After`).
    #[error("Too many uploads are being checked, please try again shortly.")]
    Busy,
    /// Writing or renaming under the data dir failed (500, logged).
    #[error("storing the upload: {0}")]
    Io(#[from] std::io::Error),
}

/// A stored upload: its kind and the name the server gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPicture {
    pub kind: PictureKind,
    pub name: String,
    pub image_type: ImageType,
}

impl StoredPicture {
    /// Parses a name the server could have chosen (`<32 lowercase hex>.<ext>` of one of the four
    /// types), nothing else: no dots but the extension's, no separators, no escapes.
    pub fn parse(kind: PictureKind, name: &str) -> Option<Self> {
        let (stem, ext) = name.split_once('.')?;
        let image_type = ImageType::from_ext(ext)?;
        let hex = stem.len() == NAME_HEX_LEN && stem.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        hex.then(|| Self { kind, name: name.to_owned(), image_type })
    }

    /// Parses the public path the chat service stores (`/uploads/avatars/<name>`).
    pub fn from_path(path: &str) -> Option<Self> {
        let (segment, name) = path.strip_prefix(UPLOADS_PREFIX)?.split_once('/')?;
        Self::parse(kind_of_dir(segment)?, name)
    }

    /// The path it is served at, which is what the chat service stores.
    pub fn path(&self) -> String {
        format!("{UPLOADS_PREFIX}{}/{}", dir(self.kind), self.name)
    }
}

/// 128 random bits in hex.
const NAME_HEX_LEN: usize = 32;

/// First bytes kept to sniff the type and read the header; a JPEG whose frame header lies
/// further (after large metadata) has its dimensions checked once the file is complete.
const HEAD_LEN: usize = 64 * 1024;

/// Age past which a temporary file is a crash's leftover, not an upload in progress.
const STALE: Duration = Duration::from_secs(3600);

/// How long an upload waits for a decoding slot before the answer is 503.
const DECODE_WAIT: Duration = Duration::from_secs(10);

/// The upload service; cheap to clone.
#[derive(Clone)]
pub struct Uploads(Arc<Inner>);

struct Inner {
    root: PathBuf,
    config: UploadsConfig,
    /// Decoding slots: a full-size JPEG takes a few hundred MB while it decodes.
    decode: Semaphore,
    per_account: RateLimiter,
}

impl Uploads {
    /// Creates `<data_dir>/uploads/{avatars,banners,incoming}` and removes from `incoming` what a
    /// crash left half-written. Runs once at start, before the server accepts connections.
    pub fn open(data_dir: &Path, config: UploadsConfig) -> std::io::Result<Self> {
        let root = data_dir.join("uploads");
        for kind in [PictureKind::Avatar, PictureKind::Banner] {
            std::fs::create_dir_all(root.join(dir(kind)))?;
        }
        let incoming = root.join("incoming");
        std::fs::create_dir_all(&incoming)?;
        let now = std::time::SystemTime::now();
        for entry in std::fs::read_dir(&incoming)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            // Only what is older than any upload in progress: nodes may share the directory.
            let stale = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).is_some_and(|age| age > STALE);
            if meta.is_file() && stale {
                std::fs::remove_file(entry.path())?;
            }
        }
        let slots = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
        Ok(Self(Arc::new(Inner { root, config, decode: Semaphore::new(slots), per_account: RateLimiter::default() })))
    }

    /// The cap of `kind`, in bytes.
    pub fn max_bytes(&self, kind: PictureKind) -> u64 {
        match kind {
            PictureKind::Avatar => self.0.config.avatar_max_bytes,
            PictureKind::Banner => self.0.config.banner_max_bytes,
        }
    }

    /// Takes one of `account`'s picture changes for this minute (SPEC §6: 30 a minute); `Err`
    /// is the wait until the next one.
    pub fn admit(&self, account: i64) -> Result<(), Duration> {
        let per_minute = self.0.config.per_account_per_minute;
        if per_minute == 0 {
            return Ok(());
        }
        self.0.per_account.check(&account, f64::from(per_minute) / 60.0, f64::from(per_minute))
    }

    /// Forgets refilled rate-limit buckets (the server's periodic sweep).
    pub fn sweep(&self) {
        self.0.per_account.sweep();
    }

    /// Starts receiving an upload of `kind` into a temporary file.
    pub async fn begin(&self, kind: PictureKind) -> Result<Incoming, UploadError> {
        let temp = self.0.root.join("incoming").join(format!("{}.part", random_hex()));
        let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&temp).await?;
        Ok(Incoming {
            uploads: self.clone(),
            kind,
            cap: self.max_bytes(kind),
            file,
            temp: Some(temp),
            written: 0,
            head: Vec::new(),
            image_type: None,
            dims_checked: false,
        })
    }

    /// The file of a stored picture, with its length, if it exists.
    pub async fn open_stored(&self, picture: &StoredPicture) -> std::io::Result<Option<(tokio::fs::File, u64)>> {
        match tokio::fs::File::open(self.file_path(picture)).await {
            Ok(file) => {
                let len = file.metadata().await?.len();
                Ok(Some((file, len)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the file a picture value the chat service stored refers to, when it is an upload
    /// (an https URL, or anything else, is left alone). A file already gone is fine; another
    /// failure is logged, since the picture it belonged to is gone either way.
    pub async fn remove(&self, stored: &str) {
        let Some(picture) = StoredPicture::from_path(stored) else { return };
        match tokio::fs::remove_file(self.file_path(&picture)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, file = %picture.name, "could not remove a replaced upload"),
        }
    }

    /// [`Uploads::remove`] for each value (an account's pictures when it is deleted).
    pub async fn remove_all(&self, stored: &[String]) {
        for value in stored {
            self.remove(value).await;
        }
    }

    fn file_path(&self, picture: &StoredPicture) -> PathBuf {
        self.0.root.join(dir(picture.kind)).join(&picture.name)
    }
}

/// An upload being received: bytes go to a temporary file, which is removed unless
/// [`Incoming::finish`] accepts it.
pub struct Incoming {
    uploads: Uploads,
    kind: PictureKind,
    cap: u64,
    file: tokio::fs::File,
    /// `None` once renamed into place.
    temp: Option<PathBuf>,
    written: u64,
    head: Vec<u8>,
    image_type: Option<ImageType>,
    dims_checked: bool,
}

impl Incoming {
    /// Appends a chunk. Past the cap, or as soon as the first bytes show that this is no image
    /// or one with too many pixels, it fails without writing more.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        self.written += chunk.len() as u64;
        if self.written > self.cap {
            return Err(UploadError::TooLarge { limit: self.cap });
        }
        if self.head.len() < HEAD_LEN && !self.dims_checked {
            let take = chunk.len().min(HEAD_LEN - self.head.len());
            self.head.extend_from_slice(&chunk[..take]);
            self.inspect_head()?;
        }
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// The type once enough bytes are in, then the declared dimensions once the header is.
    fn inspect_head(&mut self) -> Result<(), UploadError> {
        if self.image_type.is_none() && self.head.len() >= sniff::SIGNATURE_LEN {
            self.image_type = Some(sniff::sniff(&self.head)?);
        }
        if let Some(ty) = self.image_type
            && let Some(dims) = sniff::dimensions(ty, &self.head)?
        {
            sniff::check_dimensions(dims)?;
            self.dims_checked = true;
            self.head = Vec::new();
        }
        Ok(())
    }

    /// Validates the complete file (on a blocking thread, a few at a time) and stores it under
    /// a new random name.
    pub async fn finish(mut self) -> Result<StoredPicture, UploadError> {
        if self.written < sniff::SIGNATURE_LEN as u64 {
            return Err(UploadError::NotAnImage);
        }
        let image_type = self.image_type.ok_or(UploadError::NotAnImage)?;
        self.file.flush().await?;
        self.file.sync_all().await?;
        let temp = self.temp.clone().ok_or(UploadError::Invalid)?;
        let inner = &self.uploads.0;
        let permit = tokio::time::timeout(DECODE_WAIT, inner.decode.acquire())
            .await
            .map_err(|_| UploadError::Busy)?
            .map_err(|_| UploadError::Busy)?;
        let path = temp.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path)?;
            validate::validate(image_type, &bytes)
        })
        .await;
        drop(permit);
        match checked {
            Ok(result) => result?,
            // A decoder that panics on a hostile file has refused it.
            Err(e) => {
                tracing::warn!(error = %e, "an image decoder failed on an upload");
                return Err(UploadError::Invalid);
            }
        }
        let picture =
            StoredPicture { kind: self.kind, name: format!("{}.{}", random_hex(), image_type.ext()), image_type };
        tokio::fs::rename(&temp, self.uploads.file_path(&picture)).await?;
        self.temp = None;
        Ok(picture)
    }
}

impl Drop for Incoming {
    /// A refused or abandoned upload leaves nothing behind; the unlink runs off the runtime.
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn_blocking(move || remove_quietly(&temp));
                }
                Err(_) => remove_quietly(&temp),
            }
        }
    }
}

fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, "could not remove a refused upload's temporary file");
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; NAME_HEX_LEN / 2];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests;
