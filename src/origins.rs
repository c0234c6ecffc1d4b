//! The global origin list (SPEC §5): `CORS_ORIGINS` ∪ the stored CORS list (`/api/cors`) ∪
//! every app's allowed origins. It rules CORS on Push-Alt's `/api/*` routes and the origin a
//! Socket.IO handshake may come from; an app's own list is checked again when a socket joins
//! one of its channels.
//!
//! An app with no allowed origins (any origin may reach it) adds no entry; when nothing is
//! configured anywhere the list is empty and allows any origin, as an app's empty list does. A
//! request without `Origin` (a backend, a native client) is never refused here.
//!
//! The stored list is read at start, then again at most once a second by one check while the
//! others use the last one read (other nodes' changes take effect within that), and at once
//! after a change made through this node; the apps' part is rebuilt when the app cache moves to
//! a new revision. Checks read a shared snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::apps::{AppCache, OriginPattern, origin};
use crate::store::{self, Store};

/// How long a read of the stored list serves checks.
const STORED_TTL: Duration = Duration::from_secs(1);
/// Most entries the stored list may hold (an admin API writes it, but it is read on every
/// check).
pub const MAX_STORED: i64 = 1000;

struct Snapshot {
    stored: Vec<OriginPattern>,
    read_at: Instant,
    apps_revision: i64,
    apps: Vec<OriginPattern>,
}

/// The list; cheap to share (`Arc` it in the state).
pub struct GlobalOrigins {
    configured: Vec<OriginPattern>,
    store: Store,
    apps: AppCache,
    snapshot: RwLock<Arc<Snapshot>>,
    /// A check is re-reading the stored list; the others use the last one meanwhile.
    refreshing: AtomicBool,
}

impl GlobalOrigins {
    /// Parses the configured entries (`CORS_ORIGINS`), before anything starts.
    pub fn parse(configured: &[String]) -> Result<Vec<OriginPattern>, origin::OriginError> {
        configured.iter().map(|o| OriginPattern::parse(o)).collect()
    }

    /// The list over `configured` (parsed by [`GlobalOrigins::parse`]), with the stored list
    /// read now: no check ever runs without it.
    pub async fn load(configured: Vec<OriginPattern>, store: Store, apps: AppCache) -> Result<Self, store::Error> {
        let first = Snapshot { stored: Vec::new(), read_at: Instant::now(), apps_revision: i64::MIN, apps: Vec::new() };
        let list = Self {
            configured,
            store,
            apps,
            snapshot: RwLock::new(Arc::new(first)),
            refreshing: AtomicBool::new(false),
        };
        list.reload().await?;
        Ok(list)
    }

    /// Whether a request or handshake from `origin` may proceed. A stored list that cannot be
    /// read leaves the last one read in force (logged).
    pub async fn allowed(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        let snapshot = self.current().await;
        let mut entries = self.configured.iter().chain(&snapshot.stored).chain(&snapshot.apps).peekable();
        if entries.peek().is_none() {
            return true;
        }
        entries.any(|p| p.matches(origin))
    }

    /// Reads the stored list now (after a change through this node, so that it is in force
    /// before the change is answered).
    pub async fn reload(&self) -> Result<(), store::Error> {
        let stored = self.read_stored().await?;
        let current = self.snapshot.read().clone();
        let next = Snapshot {
            stored,
            read_at: Instant::now(),
            apps_revision: current.apps_revision,
            apps: current.apps.clone(),
        };
        *self.snapshot.write() = Arc::new(next);
        Ok(())
    }

    async fn current(&self) -> Arc<Snapshot> {
        let mut snapshot = self.snapshot.read().clone();
        let stale = snapshot.read_at.elapsed() >= STORED_TTL;
        if stale && self.refreshing.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            let reloaded = self.reload().await;
            self.refreshing.store(false, Ordering::Release);
            match reloaded {
                Ok(()) => snapshot = self.snapshot.read().clone(),
                Err(e) => tracing::warn!(error = %e, "reading the CORS list failed; keeping the last one"),
            }
        }
        let revision = self.apps.revision();
        if snapshot.apps_revision != revision {
            let apps = self.apps.all().iter().flat_map(|a| a.origins.iter().cloned()).collect();
            let next = Arc::new(Snapshot {
                stored: snapshot.stored.clone(),
                read_at: snapshot.read_at,
                apps_revision: revision,
                apps,
            });
            *self.snapshot.write() = next.clone();
            snapshot = next;
        }
        snapshot
    }

    /// The stored entries that parse (each was checked when it was written).
    async fn read_stored(&self) -> Result<Vec<OriginPattern>, store::Error> {
        Ok(self.store.cors_origins().await?.iter().filter_map(|r| OriginPattern::parse(&r.origin).ok()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::{self, AppSettings, CreateApp};

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

        store.insert_cors_origin("https://b.example", MAX_STORED).await.unwrap();
        list.reload().await.unwrap();
        assert!(list.allowed(Some("https://b.example")).await, "in force once reloaded");

        let settings = AppSettings { allowed_origins: vec!["*.c.example".into()], ..Default::default() };
        let app =
            apps::create(&store, CreateApp { id: Some("c".into()), settings, ..Default::default() }).await.unwrap();
        cache.catch_up(app.revision).await.unwrap();
        assert!(list.allowed(Some("https://x.c.example")).await, "an app's origins join the list");
        assert!(!list.allowed(Some("https://evilc.example")).await);
        assert!(!list.allowed(Some("null")).await);
        assert!(GlobalOrigins::parse(&["not an origin/".into()]).is_err());
    }
}
