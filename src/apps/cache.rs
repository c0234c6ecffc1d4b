//! The in-memory app cache: lookups by id and key without touching the database, refreshed
//! when the store's `apps_revision` moves (a change by this process, the CLI or another node).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::RwLock;

use super::App;
use crate::store::{self, Store};

#[derive(Default)]
struct Snapshot {
    by_id: HashMap<Arc<str>, Arc<App>>,
    by_key: HashMap<Arc<str>, Arc<App>>,
}

/// What a refresh changed, so the server can act on live connections.
#[derive(Debug, Default)]
pub struct AppChanges {
    /// Apps deleted or disabled since the last snapshot.
    pub gone: Vec<Arc<str>>,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct AppCache {
    store: Store,
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    revision: Arc<AtomicI64>,
}

impl AppCache {
    /// Loads every app.
    pub async fn load(store: Store) -> Result<Self, store::Error> {
        let cache = Self { store, snapshot: Arc::default(), revision: Arc::new(AtomicI64::new(-1)) };
        cache.refresh().await?;
        Ok(cache)
    }

    pub fn by_key(&self, key: &str) -> Option<Arc<App>> {
        self.snapshot.read().by_key.get(key).cloned()
    }

    pub fn by_id(&self, id: &str) -> Option<Arc<App>> {
        self.snapshot.read().by_id.get(id).cloned()
    }

    /// Every cached app.
    pub fn all(&self) -> Vec<Arc<App>> {
        let snap = self.snapshot.read().clone();
        let mut apps: Vec<_> = snap.by_id.values().cloned().collect();
        apps.sort_by_key(|a| a.number);
        apps
    }

    /// Reloads when the revision moved; cheap (one small query) when it did not.
    pub async fn refresh(&self) -> Result<AppChanges, store::Error> {
        let revision = self.store.apps_revision().await?;
        if revision == self.revision.load(Ordering::Acquire) {
            return Ok(AppChanges::default());
        }
        let records = self.store.list_apps().await?;
        let mut next = Snapshot::default();
        for record in records {
            let app = Arc::new(App::from_record(record));
            next.by_key.insert(app.key.clone(), app.clone());
            next.by_id.insert(app.id.clone(), app);
        }
        let next = Arc::new(next);
        let previous = std::mem::replace(&mut *self.snapshot.write(), next.clone());
        self.revision.store(revision, Ordering::Release);
        let gone = previous
            .by_id
            .values()
            .filter(|old| old.enabled && next.by_id.get(&old.id).is_none_or(|new| !new.enabled))
            .map(|old| old.id.clone())
            .collect();
        Ok(AppChanges { gone })
    }
}
