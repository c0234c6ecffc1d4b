//! Apps (tenants): their credentials, limits and switches, the operations on them that every
//! surface and the CLI share, and the in-memory cache the hot path reads.

mod cache;
pub mod origin;

use std::sync::Arc;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::{DefaultAppConfig, Secret};
use crate::store::{self, Store, apps::AppRecord, apps::NewApp};

pub use cache::{AppCache, AppChanges};
pub use origin::OriginPattern;

/// The default of [`AppLimits::max_message_bytes`]: 10 KB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 10 * 1024;

/// Per-app limits (SPEC §3, §10). Stored in the app's settings; absent fields take these
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AppLimits {
    /// Concurrent connections; 0 means unlimited. Default 0.
    pub max_connections: u64,
    /// Largest event `data` (and client message), in bytes. Default 10 240.
    pub max_message_bytes: usize,
    /// Client events a connection may send per second. Default 10.
    pub client_events_per_second: u32,
    /// Members of one presence channel. Default 100.
    pub max_presence_members: usize,
    /// Channels one connection may hold. Default 100.
    pub max_channels_per_connection: usize,
    /// Signed HTTP API requests per second (burst of the same size); 0 means unlimited.
    /// Default 0. Excess gets 429 with `Retry-After`.
    pub api_requests_per_second: u32,
}

impl Default for AppLimits {
    fn default() -> Self {
        Self {
            max_connections: 0,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            client_events_per_second: 10,
            max_presence_members: 100,
            max_channels_per_connection: 100,
            api_requests_per_second: 0,
        }
    }
}

/// Per-app switches, all off by default (SPEC §1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Switches {
    pub subscription_count: bool,
    pub watchlist_events: bool,
    pub legacy_key_publish: bool,
    pub legacy_open_emit: bool,
}

/// A partial change to [`AppLimits`]: given fields replace, absent ones stay; unknown names are
/// refused (the dashboard's PATCH and the CLI's `--limit`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    pub max_connections: Option<u64>,
    pub max_message_bytes: Option<usize>,
    pub client_events_per_second: Option<u32>,
    pub max_presence_members: Option<usize>,
    pub max_channels_per_connection: Option<usize>,
    pub api_requests_per_second: Option<u32>,
}

impl LimitsPatch {
    pub fn apply(&self, limits: &mut AppLimits) {
        let l = limits;
        l.max_connections = self.max_connections.unwrap_or(l.max_connections);
        l.max_message_bytes = self.max_message_bytes.unwrap_or(l.max_message_bytes);
        l.client_events_per_second = self.client_events_per_second.unwrap_or(l.client_events_per_second);
        l.max_presence_members = self.max_presence_members.unwrap_or(l.max_presence_members);
        l.max_channels_per_connection = self.max_channels_per_connection.unwrap_or(l.max_channels_per_connection);
        l.api_requests_per_second = self.api_requests_per_second.unwrap_or(l.api_requests_per_second);
    }
}

/// A partial change to [`Switches`], as [`LimitsPatch`] is to limits.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchesPatch {
    pub subscription_count: Option<bool>,
    pub watchlist_events: Option<bool>,
    pub legacy_key_publish: Option<bool>,
    pub legacy_open_emit: Option<bool>,
}

impl SwitchesPatch {
    pub fn apply(&self, switches: &mut Switches) {
        let s = switches;
        s.subscription_count = self.subscription_count.unwrap_or(s.subscription_count);
        s.watchlist_events = self.watchlist_events.unwrap_or(s.watchlist_events);
        s.legacy_key_publish = self.legacy_key_publish.unwrap_or(s.legacy_key_publish);
        s.legacy_open_emit = self.legacy_open_emit.unwrap_or(s.legacy_open_emit);
    }
}

/// The JSON kept in the `settings` column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppSettings {
    pub allowed_origins: Vec<String>,
    pub limits: AppLimits,
    pub switches: Switches,
}

/// An app as the hot path sees it: immutable, shared through `Arc`.
#[derive(Debug)]
pub struct App {
    pub id: Arc<str>,
    pub number: i64,
    pub key: Arc<str>,
    pub secret: Secret,
    pub name: String,
    pub enabled: bool,
    pub owner_id: Option<i64>,
    pub origins: Vec<OriginPattern>,
    pub settings: AppSettings,
    /// Free text (Push-Alt's workspace description).
    pub description: Option<String>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Milliseconds since the epoch.
    pub updated_at: i64,
    /// The apps revision this app was written at or read at: an [`AppCache`] that has reached
    /// it holds this version of the app (or a newer one).
    pub revision: i64,
}

impl App {
    pub fn limits(&self) -> &AppLimits {
        &self.settings.limits
    }

    pub fn switches(&self) -> &Switches {
        &self.settings.switches
    }

    /// The limits and switches the core applies to this app's subscriptions.
    pub fn channel_rules(&self) -> crate::core::ChannelRules {
        crate::core::ChannelRules {
            max_members: self.settings.limits.max_presence_members,
            max_channels: self.settings.limits.max_channels_per_connection,
            subscription_count: self.settings.switches.subscription_count,
        }
    }

    /// Whether an upgrade or handshake from `origin` may proceed (SPEC §1).
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        origin::allowed(&self.origins, origin)
    }

    fn from_record(r: AppRecord, revision: i64) -> Self {
        // Settings are written only by this module; a row edited by hand into something
        // unreadable falls back to defaults rather than taking the app down.
        let settings: AppSettings = serde_json::from_str(&r.settings).unwrap_or_else(|e| {
            tracing::warn!(app_id = %r.id, error = %e, "unreadable app settings, using defaults");
            AppSettings::default()
        });
        let origins = settings.allowed_origins.iter().filter_map(|o| OriginPattern::parse(o).ok()).collect();
        Self {
            id: r.id.into(),
            number: r.number,
            key: r.key.into(),
            secret: Secret(r.secret),
            name: r.name,
            enabled: r.enabled,
            owner_id: r.owner_id,
            origins,
            settings,
            description: r.description,
            created_at: r.created_at,
            updated_at: r.updated_at,
            revision,
        }
    }
}

/// Why an app operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// A given id or key is another app's.
    #[error("an app with {field} {value} already exists")]
    Duplicate { field: &'static str, value: String },
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Draws of a generated id or key before giving up (each collision is about one in a few
/// thousand at a few thousand apps).
const CREATE_ATTEMPTS: usize = 8;

/// Fields for a new app; `None` means generate.
#[derive(Debug, Clone, Default)]
pub struct CreateApp {
    pub id: Option<String>,
    pub key: Option<String>,
    /// Prefix for a generated key (Notif's domain keys start with `nk_`).
    pub key_prefix: Option<&'static str>,
    pub secret: Option<String>,
    pub name: String,
    pub owner_id: Option<i64>,
    pub settings: AppSettings,
    pub description: Option<String>,
    /// `None` means enabled.
    pub enabled: Option<bool>,
}

/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

/// Creates an app, generating what was not given. A generated id or key that is already taken
/// is drawn again; a given one that is taken is [`Error::Duplicate`].
pub async fn create(store: &Store, req: CreateApp) -> Result<App, Error> {
    create_drawing(store, req, &mut || random_digits(7)).await
}

/// [`create`], drawing generated ids from `draw_id`.
async fn create_drawing(
    store: &Store,
    req: CreateApp,
    draw_id: &mut (dyn FnMut() -> String + Send),
) -> Result<App, Error> {
    let given_id = req.id.map(|id| validate_token("id", id, 64)).transpose()?;
    let given_key = req.key.map(|key| validate_token("key", key, 128)).transpose()?;
    let secret = match req.secret {
        Some(s) => validate_secret(s)?,
        None => random_hex(16),
    };
    validate_settings(&req.settings)?;
    let description = req.description.map(validate_description).transpose()?;
    let name = req.name.trim();
    if name.chars().count() > 255 {
        return Err(Error::Invalid { field: "name", reason: "must be at most 255 characters".into() });
    }
    for _ in 0..CREATE_ATTEMPTS {
        let id = given_id.clone().unwrap_or_else(&mut *draw_id);
        let key = given_key.clone().unwrap_or_else(|| {
            let prefix = req.key_prefix.unwrap_or_default();
            format!("{prefix}{}", if req.key_prefix.is_some() { random_hex(16) } else { random_hex(10) })
        });
        let new = NewApp {
            id: id.clone(),
            key: key.clone(),
            secret: secret.clone(),
            name: if name.is_empty() { format!("app {id}") } else { name.to_owned() },
            enabled: req.enabled.unwrap_or(true),
            owner_id: req.owner_id,
            settings: settings_json(&req.settings),
            description: description.clone(),
        };
        match store.insert_app(new).await {
            Ok((record, revision)) => {
                crate::audit::app_changed("created", &record.id);
                return Ok(App::from_record(record, revision));
            }
            Err(store::Error::Conflict(what)) => {
                let (id_taken, key_taken) = store.app_id_or_key_taken(&id, &key).await?;
                if id_taken && given_id.is_some() {
                    return Err(Error::Duplicate { field: "id", value: id });
                }
                if key_taken && given_key.is_some() {
                    return Err(Error::Duplicate { field: "key", value: key });
                }
                // A generated one collided (or a concurrent create took it): draw again.
                tracing::debug!(conflict = %what, "generated app id or key taken; drawing again");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(store::Error::Conflict("no free app id or key after several draws".into()).into())
}

/// Writes `record` and logs the change.
async fn write(store: &Store, record: &AppRecord, action: &'static str) -> Result<App, Error> {
    let (record, revision) = store.update_app(record).await?;
    crate::audit::app_changed(action, &record.id);
    Ok(App::from_record(record, revision))
}

/// Replaces an app's secret with a fresh random one.
pub async fn rotate_secret(store: &Store, id: &str) -> Result<App, Error> {
    let mut record = store.get_app(id).await?;
    record.secret = random_hex(16);
    write(store, &record, "secret rotated").await
}

/// Enables or disables an app.
pub async fn set_enabled(store: &Store, id: &str, enabled: bool) -> Result<App, Error> {
    let mut record = store.get_app(id).await?;
    record.enabled = enabled;
    write(store, &record, if enabled { "enabled" } else { "disabled" }).await
}

/// Replaces an app's settings.
pub async fn set_settings(store: &Store, id: &str, settings: &AppSettings) -> Result<App, Error> {
    validate_settings(settings)?;
    let mut record = store.get_app(id).await?;
    record.settings = settings_json(settings);
    write(store, &record, "updated").await
}

/// Changes to an app; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateApp {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub settings: Option<AppSettings>,
    /// `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// A secret chosen by the caller (Push-Alt's `app_key`): the old one stops working.
    pub secret: Option<String>,
}

/// Applies an [`UpdateApp`].
pub async fn update(store: &Store, id: &str, changes: UpdateApp) -> Result<App, Error> {
    let mut record = store.get_app(id).await?;
    if let Some(name) = changes.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 255 {
            return Err(Error::Invalid { field: "name", reason: "must be 1–255 characters".into() });
        }
        record.name = name.to_owned();
    }
    if let Some(enabled) = changes.enabled {
        record.enabled = enabled;
    }
    if let Some(settings) = &changes.settings {
        validate_settings(settings)?;
        record.settings = settings_json(settings);
    }
    if let Some(description) = changes.description {
        record.description = description.map(validate_description).transpose()?;
    }
    let rotated = changes.secret.is_some();
    if let Some(secret) = changes.secret {
        record.secret = validate_secret(secret)?;
    }
    write(store, &record, if rotated { "updated, secret replaced" } else { "updated" }).await
}

/// Deletes an app; returns the apps revision of the delete.
pub async fn delete(store: &Store, id: &str) -> Result<i64, Error> {
    let revision = store.delete_app(id).await?;
    crate::audit::app_changed("deleted", id);
    Ok(revision)
}

/// Every app.
pub async fn list(store: &Store) -> Result<Vec<App>, Error> {
    let revision = store.apps_revision().await?;
    Ok(store.list_apps().await?.into_iter().map(|r| App::from_record(r, revision)).collect())
}

/// Makes sure the default app exists (SPEC §2): on an empty database one is created; when
/// configuration pins id, key or secret, the app is created or updated to match. Returns the
/// app and whether it was created now.
pub async fn ensure_default(store: &Store, pinned: &DefaultAppConfig) -> Result<Option<(App, bool)>, Error> {
    let existing = store.list_apps().await?;
    if !pinned.is_pinned() {
        if existing.is_empty() {
            let app = create(
                store,
                CreateApp {
                    name: pinned.name.clone().unwrap_or_else(|| "default".into()),
                    owner_id: store.first_admin().await?,
                    ..Default::default()
                },
            )
            .await?;
            return Ok(Some((app, true)));
        }
        return Ok(None);
    }
    let found = existing.into_iter().find(|r| match (&pinned.id, &pinned.key) {
        (Some(id), _) => r.id == *id,
        (None, Some(key)) => r.key == *key,
        (None, None) => true,
    });
    match found {
        None => {
            let app = create(
                store,
                CreateApp {
                    id: pinned.id.clone(),
                    key: pinned.key.clone(),
                    secret: pinned.secret.as_ref().map(|s| s.0.clone()),
                    name: pinned.name.clone().unwrap_or_else(|| "default".into()),
                    owner_id: store.first_admin().await?,
                    ..Default::default()
                },
            )
            .await?;
            Ok(Some((app, true)))
        }
        Some(mut record) => {
            let before = record.clone();
            if let Some(key) = &pinned.key {
                record.key = validate_token("key", key.clone(), 128)?;
            }
            if let Some(secret) = &pinned.secret {
                record.secret = secret.0.clone();
            }
            if let Some(name) = &pinned.name {
                record.name = name.clone();
            }
            let app = if record != before {
                write(store, &record, "updated from configuration").await?
            } else {
                App::from_record(record, store.apps_revision().await?)
            };
            Ok(Some((app, false)))
        }
    }
}

fn settings_json(settings: &AppSettings) -> String {
    serde_json::to_string(settings).unwrap_or_else(|_| "{}".into())
}

fn validate_settings(settings: &AppSettings) -> Result<(), Error> {
    for o in &settings.allowed_origins {
        OriginPattern::parse(o).map_err(|e| Error::Invalid { field: "allowed_origins", reason: e.to_string() })?;
    }
    let l = &settings.limits;
    if l.max_message_bytes == 0 || l.max_message_bytes > 1024 * 1024 {
        return Err(Error::Invalid { field: "max_message_bytes", reason: "must be 1–1048576".into() });
    }
    if l.max_channels_per_connection == 0 || l.max_presence_members == 0 {
        return Err(Error::Invalid { field: "limits", reason: "channel and member limits must be at least 1".into() });
    }
    Ok(())
}

/// A secret a caller chose: 1–255 bytes.
fn validate_secret(secret: String) -> Result<String, Error> {
    if secret.is_empty() || secret.len() > 255 {
        return Err(Error::Invalid { field: "secret", reason: "must be 1–255 characters".into() });
    }
    Ok(secret)
}

fn validate_description(description: String) -> Result<String, Error> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::Invalid { field: "description", reason: "must be at most 1024 characters".into() });
    }
    Ok(description)
}

/// Ids and keys travel in URLs: `[A-Za-z0-9_.-]`, 1 to `max` characters.
fn validate_token(field: &'static str, value: String, max: usize) -> Result<String, Error> {
    match crate::config::check_app_token(&value, max) {
        Ok(()) => Ok(value),
        Err(reason) => Err(Error::Invalid { field, reason }),
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(buf.as_mut_slice());
    hex::encode(buf)
}

fn random_digits(n: usize) -> String {
    let mut rng = rand::rng();
    let first = rng.random_range(1..=9u8);
    std::iter::once(first).chain((1..n).map(|_| rng.random_range(0..=9u8))).map(|d| char::from(b'0' + d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_generated_id_that_is_taken_is_drawn_again() {
        let (store, _dir) = crate::store::temp_store().await;
        create(&store, CreateApp { id: Some("1000001".into()), ..Default::default() }).await.unwrap();
        let mut draws = ["1000001", "1000001", "1000002"].into_iter().map(str::to_owned);
        let app = create_drawing(&store, CreateApp::default(), &mut || draws.next().unwrap()).await.unwrap();
        assert_eq!(&*app.id, "1000002");
        // Given ones are not redrawn: the caller hears which one is taken.
        let dup = create(&store, CreateApp { id: Some("1000002".into()), ..Default::default() }).await;
        assert!(matches!(&dup, Err(Error::Duplicate { field: "id", value }) if value == "1000002"), "{dup:?}");
        let key = app.key.to_string();
        let dup = create(&store, CreateApp { key: Some(key.clone()), ..Default::default() }).await;
        assert_eq!(dup.unwrap_err().to_string(), format!("an app with key {key} already exists"));
        // A space that never frees up ends in an error, not a loop.
        let stuck = create_drawing(&store, CreateApp::default(), &mut || "1000001".to_owned()).await;
        assert!(matches!(stuck, Err(Error::Store(store::Error::Conflict(_)))), "{stuck:?}");
    }
}
