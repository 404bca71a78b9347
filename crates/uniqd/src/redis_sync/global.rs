//! The windows, top pages and per-group counts of every replica: [`ViewShare`] runs their
//! part of each sync round ([`super::windows`], [`super::pages`], [`super::groups`]) and
//! [`GlobalViews`] hands the results to the
//! exporter (as its [`SharedViews`]) while Redis is up; during an outage the exporter answers
//! with this replica's own views, marked `local`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use redis::aio::ConnectionManager;
use redis::RedisResult;
use uniqd_core::{GroupsSnapshot, TopPagesSnapshot, Views, WindowRing};
use uniqd_exporter::SharedViews;

use super::groups::GroupShare;
use super::pages::PageShare;
use super::status::RedisStatus;
use super::windows::WindowShare;

/// What the exporter reads: the mirror ring, the last merge of the top pages and the last
/// read of the groups.
#[derive(Debug)]
pub struct GlobalViews {
    status: Arc<RedisStatus>,
    mirror: Option<Arc<WindowRing>>,
    /// Whether the mirror was filled from every retained interval at least once.
    windows_ready: AtomicBool,
    pages: Mutex<Option<Arc<TopPagesSnapshot>>>,
    groups: Mutex<Option<Arc<GroupsSnapshot>>>,
}

/// The value in `slot`, whole even if a writer panicked (only complete values are stored).
fn load<T>(slot: &Mutex<Option<Arc<T>>>) -> Option<Arc<T>> {
    match slot.lock() {
        Ok(value) => value.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn store<T>(slot: &Mutex<Option<Arc<T>>>, value: T) {
    let value = Some(Arc::new(value));
    match slot.lock() {
        Ok(mut slot) => *slot = value,
        Err(poisoned) => *poisoned.into_inner() = value,
    }
}

impl SharedViews for GlobalViews {
    fn windows(&self) -> Option<Arc<WindowRing>> {
        // Relaxed: a flag read on its own; the mirror is shared through its own atomics.
        let ready = self.windows_ready.load(Ordering::Relaxed);
        self.mirror
            .as_ref()
            .filter(|_| ready && self.status.is_up())
            .cloned()
    }

    fn top_pages(&self, limit: usize) -> Option<TopPagesSnapshot> {
        if !self.status.is_up() {
            return None;
        }
        let merged = match self.pages.lock() {
            Ok(pages) => pages.clone()?,
            // Only ever holds a complete value: recover it.
            Err(poisoned) => poisoned.into_inner().clone()?,
        };
        // Only the pages asked for are copied (the merge keeps up to 10,000).
        Some(TopPagesSnapshot {
            total_requests: merged.total_requests,
            capacity: merged.capacity,
            shards: merged.shards,
            tracked: merged.tracked,
            error_bound: merged.error_bound,
            pages: merged.pages.iter().take(limit).cloned().collect(),
        })
    }

    fn groups(&self) -> Option<GroupsSnapshot> {
        if !self.status.is_up() {
            return None;
        }
        load(&self.groups).map(|groups| (*groups).clone())
    }
}

/// The view part of a replica's sync round.
#[derive(Debug)]
pub struct ViewShare {
    windows: Option<WindowShare>,
    pages: Option<PageShare>,
    groups: Option<GroupShare>,
    global: Arc<GlobalViews>,
}

impl ViewShare {
    /// Shares the windows, top pages and groups of `views` that are on (`None` if none is).
    pub fn new(views: &Views, status: Arc<RedisStatus>, prefix: &str, ttl_ms: u64) -> Option<Self> {
        let replica = status.replica().to_owned();
        let windows = views
            .windows()
            .map(|ring| WindowShare::new(Arc::clone(ring), prefix, &replica, ttl_ms));
        let pages = views
            .top_pages()
            .map(|top| PageShare::new(Arc::clone(top), prefix, &replica, ttl_ms));
        let groups = views
            .groups()
            .map(|groups| GroupShare::new(Arc::clone(groups), prefix, &replica, ttl_ms));
        if windows.is_none() && pages.is_none() && groups.is_none() {
            return None;
        }
        let global = Arc::new(GlobalViews {
            status,
            mirror: windows.as_ref().map(WindowShare::mirror),
            windows_ready: AtomicBool::new(false),
            pages: Mutex::new(None),
            groups: Mutex::new(None),
        });
        Some(Self {
            windows,
            pages,
            groups,
            global,
        })
    }

    /// What the exporter reads.
    pub fn global(&self) -> Arc<GlobalViews> {
        Arc::clone(&self.global)
    }

    /// After a failed round: merge and read everything again at the next one.
    pub fn forget(&mut self) {
        if let Some(windows) = &mut self.windows {
            windows.forget();
        }
        if let Some(pages) = &mut self.pages {
            pages.forget();
        }
        if let Some(groups) = &mut self.groups {
            groups.forget();
        }
    }

    /// One round (`temp`: this replica's temporary merge key).
    pub async fn round(&mut self, conn: &mut ConnectionManager, temp: &str) -> RedisResult<()> {
        if let Some(windows) = &mut self.windows {
            windows.round(conn, temp).await?;
            // Relaxed: see `GlobalViews::windows`.
            self.global
                .windows_ready
                .store(windows.has_fetched(), Ordering::Relaxed);
        }
        if let Some(pages) = &mut self.pages {
            if let Some(merged) = pages.round(conn).await? {
                store(&self.global.pages, merged);
            }
        }
        if let Some(groups) = &mut self.groups {
            if let Some(counts) = groups.round(conn, temp).await? {
                store(&self.global.groups, counts);
            }
        }
        Ok(())
    }
}
