//! The global origin list (SPEC §5): `CORS_ORIGINS` ∪ the stored CORS list (`/api/cors`) ∪ the
//! allowed origins of every enabled app. It rules CORS on Push-Alt's `/api/*` routes and, with
//! the Socket.IO transport, the origin a handshake may come from; an app's own list is checked
//! again when a socket joins one of its channels.
//!
//! An empty list allows any origin, as Push-Alt did with `CORS_ORIGINS` unset; once any part has
//! an entry, only listed origins pass. An app's `*` never joins (one app's "anywhere" would open
//! the list for every app), nor does a disabled app's list. A request without `Origin` (a
//! backend, a native client) is never refused here.
//!
//! Both moving parts only move forward (STYLE, "Bounded by construction"): the stored part
//! carries the `cors_revision` it was read at, the apps part the app cache revision it was built
//! from, and a part replaces the one in force only when its revision is higher. The stored part
//! is re-read by the server's refresh task when the database's revision moved (other nodes'
//! changes), and by a change made through this node before it is answered; the apps part is
//! rebuilt by the first check after the app cache moved. Checks never wait on the database.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::apps::{App, AppCache, OriginPattern, origin};
use crate::store::cors::CorsOriginRecord;
use crate::store::{self, Store};

/// Most entries the stored list may hold (an admin API writes it, but it is read on every
/// check).
pub const MAX_STORED: i64 = 1000;

/// One part of the list, as of a revision.
struct Part {
    revision: i64,
    patterns: Vec<OriginPattern>,
}

impl Part {
    fn none() -> RwLock<Arc<Part>> {
        RwLock::new(Arc::new(Part { revision: i64::MIN, patterns: Vec::new() }))
    }

    /// The stored entries that parse (each was checked when it was written).
    fn stored(revision: i64, records: &[CorsOriginRecord]) -> Self {
        Self { revision, patterns: records.iter().filter_map(|r| OriginPattern::parse(&r.origin).ok()).collect() }
    }

    /// The enabled apps' entries but `*`.
    fn from_apps(revision: i64, apps: &[Arc<App>]) -> Self {
        let patterns =
            apps.iter().filter(|a| a.enabled).flat_map(|a| a.origins.iter()).filter(|p| !p.is_any()).cloned().collect();
        Self { revision, patterns }
    }
}

/// The list; cheap to share (`Arc` it in the state).
pub struct GlobalOrigins {
    configured: Vec<OriginPattern>,
    store: Store,
    apps: AppCache,
    stored: RwLock<Arc<Part>>,
    from_apps: RwLock<Arc<Part>>,
}

impl GlobalOrigins {
    /// Parses the configured entries (`CORS_ORIGINS`), before anything starts.
    pub fn parse(configured: &[String]) -> Result<Vec<OriginPattern>, origin::OriginError> {
        configured.iter().map(|o| OriginPattern::parse(o)).collect()
    }

    /// The list over `configured` (parsed by [`GlobalOrigins::parse`]), with the stored list
    /// read now: no check ever runs without it.
    pub async fn load(configured: Vec<OriginPattern>, store: Store, apps: AppCache) -> Result<Self, store::Error> {
        let list = Self { configured, store, apps, stored: Part::none(), from_apps: Part::none() };
        list.reload().await?;
        Ok(list)
    }

    /// Whether a request or handshake from `origin` may proceed. Reads what is in force; never
    /// waits on the database.
    pub async fn allowed(&self, origin: Option<&str>) -> bool {
        self.allowed_now(origin)
    }

    /// [`GlobalOrigins::allowed`] for callers that cannot await (the Engine.IO handshake hook).
    pub fn allowed_now(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        let stored = self.stored.read().clone();
        let from_apps = self.apps_part();
        let mut entries = self.configured.iter().chain(&stored.patterns).chain(&from_apps.patterns).peekable();
        if entries.peek().is_none() {
            return true;
        }
        entries.any(|p| p.matches(origin))
    }

    /// Re-reads the stored list if the database's revision moved past the one in force (the
    /// server's refresh task: changes made on other nodes).
    pub async fn refresh(&self) -> Result<(), store::Error> {
        if self.store.cors_revision().await? <= self.stored.read().revision {
            return Ok(());
        }
        self.reload().await
    }

    /// Makes sure the stored list in force is at `revision` or later (what a change through
    /// this node wrote), so that the change is in force when this returns.
    pub async fn catch_up(&self, revision: i64) -> Result<(), store::Error> {
        if self.stored.read().revision >= revision {
            return Ok(());
        }
        self.reload().await
    }

    async fn reload(&self) -> Result<(), store::Error> {
        let (revision, records) = self.store.cors_snapshot().await?;
        install(&self.stored, Part::stored(revision, &records));
        Ok(())
    }

    /// The apps part in force, rebuilt first if the app cache moved since it was built.
    fn apps_part(&self) -> Arc<Part> {
        let current = self.from_apps.read().clone();
        if current.revision == self.apps.revision() {
            return current;
        }
        let (revision, apps) = self.apps.all_at();
        install(&self.from_apps, Part::from_apps(revision, &apps))
    }
}

/// Puts `next` in force if it is newer than the part in force (an older read, finishing last,
/// changes nothing); returns the part in force afterwards.
fn install(slot: &RwLock<Arc<Part>>, next: Part) -> Arc<Part> {
    let mut current = slot.write();
    if next.revision > current.revision {
        *current = Arc::new(next);
    }
    current.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::{self, AppSettings, CreateApp};

    fn settings(origins: &[&str]) -> AppSettings {
        AppSettings { allowed_origins: origins.iter().map(|o| o.to_string()).collect(), ..Default::default() }
    }

    #[tokio::test]
    async fn the_union_of_configured_stored_and_app_origins_and_empty_allows_any() {
        let (store, _dir) = crate::store::temp_store().await;
        apps::create(&store, CreateApp { id: Some("open".into()), ..Default::default() }).await.unwrap();
        let cache = AppCache::load(store.clone()).await.unwrap();
        let nothing = GlobalOrigins::load(Vec::new(), store.clone(), cache.clone()).await.unwrap();
        assert!(nothing.allowed(Some("https://anywhere.example")).await, "nothing configured: any");
        assert!(nothing.allowed(None).await);

        let configured = GlobalOrigins::parse(&["https://a.example".into()]).unwrap();
        let list = GlobalOrigins::load(configured, store.clone(), cache.clone()).await.unwrap();
        assert!(list.allowed(Some("https://a.example")).await);
        assert!(!list.allowed(Some("https://b.example")).await);
        assert!(list.allowed(None).await, "no Origin: a backend");

        let (_, revision) = store.insert_cors_origin("https://b.example", MAX_STORED).await.unwrap().unwrap();
        list.catch_up(revision).await.unwrap();
        assert!(list.allowed(Some("https://b.example")).await, "in force once caught up");

        let settings = settings(&["*.c.example"]);
        let app =
            apps::create(&store, CreateApp { id: Some("c".into()), settings, ..Default::default() }).await.unwrap();
        cache.catch_up(app.revision).await.unwrap();
        assert!(list.allowed(Some("https://x.c.example")).await, "an app's origins join the list");
        assert!(!list.allowed(Some("https://evilc.example")).await);
        assert!(!list.allowed(Some("null")).await);
        assert!(GlobalOrigins::parse(&["not an origin/".into()]).is_err());
    }

    #[tokio::test]
    async fn only_enabled_apps_join_and_never_with_a_star() {
        let (store, _dir) = crate::store::temp_store().await;
        let cache = AppCache::load(store.clone()).await.unwrap();
        let list = GlobalOrigins::load(Vec::new(), store.clone(), cache.clone()).await.unwrap();
        let star = CreateApp { id: Some("star".into()), settings: settings(&["*"]), ..Default::default() };
        let app = apps::create(&store, star).await.unwrap();
        cache.catch_up(app.revision).await.unwrap();
        assert!(list.allowed(Some("https://any.example")).await, "a `*` adds nothing: the list is still empty");
        let one =
            CreateApp { id: Some("one".into()), settings: settings(&["https://one.example"]), ..Default::default() };
        let app = apps::create(&store, one).await.unwrap();
        cache.catch_up(app.revision).await.unwrap();
        assert!(list.allowed(Some("https://one.example")).await);
        assert!(!list.allowed(Some("https://any.example")).await, "`*` does not widen a list that has entries");
        let app = apps::set_enabled(&store, "one", false).await.unwrap();
        cache.catch_up(app.revision).await.unwrap();
        assert!(list.allowed(Some("https://any.example")).await, "a disabled app's origins leave the list");
    }

    #[tokio::test]
    async fn an_older_read_of_the_stored_list_never_replaces_a_newer_one() {
        let (store, _dir) = crate::store::temp_store().await;
        let cache = AppCache::load(store.clone()).await.unwrap();
        let configured = GlobalOrigins::parse(&["https://configured.example".into()]).unwrap();
        let list = GlobalOrigins::load(configured, store.clone(), cache.clone()).await.unwrap();
        // A reload that read the table before an admin's change, and finishes after it.
        let (stale_revision, stale) = store.cors_snapshot().await.unwrap();
        let (_, revision) = store.insert_cors_origin("https://new.example", MAX_STORED).await.unwrap().unwrap();
        list.catch_up(revision).await.unwrap();
        install(&list.stored, Part::stored(stale_revision, &stale));
        assert!(list.allowed(Some("https://new.example")).await, "the change stays in force");
        // Nor does a read at the same revision.
        install(&list.stored, Part { revision, patterns: Vec::new() });
        assert!(list.allowed(Some("https://new.example")).await);
        // A change made elsewhere (another node) is read by the refresh, and only then.
        let (_, elsewhere) = store.insert_cors_origin("https://other-node.example", MAX_STORED).await.unwrap().unwrap();
        assert!(!list.allowed(Some("https://other-node.example")).await);
        list.refresh().await.unwrap();
        assert!(list.allowed(Some("https://other-node.example")).await);
        assert_eq!(list.stored.read().revision, elsewhere);
    }

    #[tokio::test]
    async fn an_apps_part_built_from_an_older_cache_never_replaces_a_newer_one() {
        let (store, _dir) = crate::store::temp_store().await;
        let cache = AppCache::load(store.clone()).await.unwrap();
        let list = GlobalOrigins::load(Vec::new(), store.clone(), cache.clone()).await.unwrap();
        let (old_revision, old_apps) = cache.all_at();
        let new = CreateApp { id: Some("n".into()), settings: settings(&["https://n.example"]), ..Default::default() };
        let app = apps::create(&store, new).await.unwrap();
        cache.catch_up(app.revision).await.unwrap();
        assert!(!list.allowed(Some("https://elsewhere.example")).await);
        // A check that read the cache before the change and builds its part last.
        install(&list.from_apps, Part::from_apps(old_revision, &old_apps));
        assert!(!list.allowed(Some("https://elsewhere.example")).await, "the new app's origin still rules");
        assert!(list.allowed(Some("https://n.example")).await);
    }
}
