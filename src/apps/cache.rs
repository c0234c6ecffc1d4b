//! The in-memory app cache: lookups by id and key without touching the database.
//!
//! It only moves forward. Each snapshot carries the apps revision it holds (the store bumps
//! `apps_revision` in the same transaction as every app change, and the list and the revision
//! are read in one snapshot), and a snapshot replaces the cached one only if its revision is
//! higher, so two reloads racing (the periodic poll and a
//! dashboard change) can never put an older list back. A change made through this node calls
//! [`AppCache::catch_up`] with the revision its write returned before it answers, so it is in
//! force at once; a change heard of from elsewhere (the CLI through the poll, another node
//! later) is applied the same way.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::App;
use crate::store::{self, Store};

struct Snapshot {
    /// The apps revision the list holds, exactly.
    revision: i64,
    by_id: HashMap<Arc<str>, Arc<App>>,
    by_key: HashMap<Arc<str>, Arc<App>>,
}

impl Snapshot {
    fn new(revision: i64) -> Self {
        Self { revision, by_id: HashMap::new(), by_key: HashMap::new() }
    }

    fn insert(&mut self, app: Arc<App>) {
        self.by_key.insert(app.key.clone(), app.clone());
        self.by_id.insert(app.id.clone(), app);
    }
}

/// What installing a snapshot changed, so the server can act on live connections.
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
}

impl AppCache {
    /// Loads every app.
    pub async fn load(store: Store) -> Result<Self, store::Error> {
        let empty = Snapshot::new(i64::MIN);
        let cache = Self { store, snapshot: Arc::new(RwLock::new(Arc::new(empty))) };
        cache.refresh().await?;
        Ok(cache)
    }

    pub fn by_key(&self, key: &str) -> Option<Arc<App>> {
        self.snapshot.read().by_key.get(key).cloned()
    }

    pub fn by_id(&self, id: &str) -> Option<Arc<App>> {
        self.snapshot.read().by_id.get(id).cloned()
    }

    /// The app with this `number` (Push-Alt's workspace id). A scan: numbers are looked up by
    /// the admin API, never on a hot path.
    pub fn by_number(&self, number: i64) -> Option<Arc<App>> {
        self.snapshot.read().by_id.values().find(|a| a.number == number).cloned()
    }

    /// Every cached app.
    pub fn all(&self) -> Vec<Arc<App>> {
        self.all_at().1
    }

    /// Every cached app and the revision they are at, from one snapshot (a caller that files
    /// what it derives from them under that revision must not read the two apart).
    pub fn all_at(&self) -> (i64, Vec<Arc<App>>) {
        let snap = self.snapshot.read().clone();
        let mut apps: Vec<_> = snap.by_id.values().cloned().collect();
        apps.sort_by_key(|a| a.number);
        (snap.revision, apps)
    }

    /// The revision the cache has reached.
    pub fn revision(&self) -> i64 {
        self.snapshot.read().revision
    }

    /// Makes sure the cache holds revision `revision` or later (a change written here, or one
    /// announced from elsewhere): nothing to do when it already does, else a reload.
    pub async fn catch_up(&self, revision: i64) -> Result<AppChanges, store::Error> {
        if self.revision() >= revision {
            return Ok(AppChanges::default());
        }
        self.refresh().await
    }

    /// Reloads when the store's revision moved past the cache's; one small query when it did
    /// not.
    pub async fn refresh(&self) -> Result<AppChanges, store::Error> {
        if self.store.apps_revision().await? <= self.revision() {
            return Ok(AppChanges::default());
        }
        // One snapshot: the list is exactly what its revision holds. (Read apart, a list could be
        // newer than its revision, and a reload filed under a higher one but read earlier could
        // then replace it with older apps.)
        let (revision, records) = self.store.apps_snapshot().await?;
        let mut next = Snapshot::new(revision);
        for record in records {
            next.insert(Arc::new(App::from_record(record, revision)));
        }
        Ok(self.install(next))
    }

    /// Puts `next` in place if it is newer than what is cached, and says which apps went away
    /// between the two. An older or equal snapshot (a reload that lost a race) changes nothing.
    fn install(&self, next: Snapshot) -> AppChanges {
        let next = Arc::new(next);
        let previous = {
            let mut current = self.snapshot.write();
            if next.revision <= current.revision {
                return AppChanges::default();
            }
            std::mem::replace(&mut *current, next.clone())
        };
        let gone = previous
            .by_id
            .values()
            .filter(|old| old.enabled && next.by_id.get(&old.id).is_none_or(|new| !new.enabled))
            .map(|old| old.id.clone())
            .collect();
        AppChanges { gone }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::{self, CreateApp};

    /// A snapshot as a reload that read the store earlier would have built it.
    async fn read_now(store: &Store) -> Snapshot {
        let (revision, records) = store.apps_snapshot().await.unwrap();
        let mut snap = Snapshot::new(revision);
        for record in records {
            snap.insert(Arc::new(App::from_record(record, revision)));
        }
        snap
    }

    #[tokio::test]
    async fn an_older_snapshot_never_replaces_a_newer_one() {
        let (store, _dir) = crate::store::temp_store().await;
        let cache = AppCache::load(store.clone()).await.unwrap();
        let stale = read_now(&store).await;
        let app = apps::create(&store, CreateApp { id: Some("new".into()), ..Default::default() }).await.unwrap();
        let changes = cache.catch_up(app.revision).await.unwrap();
        assert!(changes.gone.is_empty());
        assert!(cache.by_id("new").is_some(), "in force once caught up");
        // The slow reload from before the create lands last: it changes nothing, and above all
        // does not report the new app as gone.
        let changes = cache.install(stale);
        assert!(changes.gone.is_empty(), "{:?}", changes.gone);
        assert!(cache.by_id("new").is_some());
        assert_eq!(cache.revision(), app.revision);
        // An equal revision is not newer either.
        let same = read_now(&store).await;
        assert_eq!(same.revision, cache.revision());
        let before = cache.by_id("new").unwrap();
        cache.install(same);
        assert!(Arc::ptr_eq(&before, &cache.by_id("new").unwrap()));
    }

    #[tokio::test]
    async fn catch_up_reloads_only_when_behind_and_reports_what_went() {
        let (store, _dir) = crate::store::temp_store().await;
        let cache = AppCache::load(store.clone()).await.unwrap();
        let app = apps::create(&store, CreateApp { id: Some("gone".into()), ..Default::default() }).await.unwrap();
        cache.catch_up(app.revision).await.unwrap();
        let revision = apps::delete(&store, "gone").await.unwrap();
        assert!(cache.by_id("gone").is_some(), "not yet caught up");
        let changes = cache.catch_up(revision).await.unwrap();
        assert_eq!(changes.gone, vec![Arc::<str>::from("gone")]);
        assert!(cache.by_id("gone").is_none());
        assert!(cache.catch_up(revision).await.unwrap().gone.is_empty(), "nothing to do the second time");
    }
}
