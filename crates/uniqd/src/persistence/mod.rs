//! The optional state file (`--state-file`): load the counter (and the time
//! window ring and the per-group counters, when on) at start, save them every
//! interval and once more after the ingest drain.
//!
//! The bytes are `uniqd_core`'s state format (`UniqueCounter::to_state`:
//! magic, version, CRC-32, the registers as a Redis dense HLL string at a
//! fixed offset, the exact set while exact; with time windows on, format
//! version 2, which adds the ring's per-minute and per-hour slots; with
//! `--group-by`, format version 3, which adds every tracked group's counter
//! and `__other__`'s: `UniqueCounter::to_state_with_sections`). All three
//! versions load; window slots older than the ring keeps at load time are
//! dropped. This module only decides when to write and makes each write
//! atomic:
//!
//! 1. write the bytes to `.<name>.<pid>.tmp` in the same directory (a rename
//!    is only atomic within one file system);
//! 2. `fsync` that file, so its bytes are on disk before its name is;
//! 3. `rename` it over the state file: readers see the old or the new state,
//!    never a mix;
//! 4. `fsync` the directory, so the rename itself survives a power cut.
//!
//! A crash at any step leaves the previous state file intact (and at worst a
//! stale temporary file beside it). A save is skipped when the encoded state
//! equals the last one written, so an idle service does not touch the disk.
//!
//! **One process per file.** Before loading, the process takes an exclusive
//! advisory lock on `<file>.lock` and holds it for its life ([`lock`]); a
//! second process on the same file refuses to start, naming the holder.
//!
//! **Symbolic links are written through.** A state file path that is a link
//! is resolved once at start ([`resolve_links`]); loads, saves (the temporary
//! file and the rename in the target's directory), the lock and a reset's
//! `.corrupt-` copy all use the target, so the link stays a link.
//!
//! **Window history survives `--windows off`.** A version 2 file loaded with
//! time windows off keeps its window section: checked, then saved again
//! unchanged with every later save (not aged, not counted into), so turning
//! windows on again finds the history (slots the ring no longer keeps are
//! dropped at that load, as after any downtime). `--state-drop-windows`
//! (`StateConfig::drop_windows`) drops it instead, writing version 1, for a
//! rollback to a build without time windows.
//!
//! **Groups survive a restart, and `--group-by` off.** With `--group-by`, the
//! saved groups are loaded into the empty groups at start
//! (`Groups::restore_state`): the largest take the `--max-groups` slots, the
//! rest are merged into `__other__` (so the groups and `__other__` still union
//! to the total); groups saved for another `--group-by` field are dropped with
//! a warning. With `--group-by` off, a file's groups section is checked and
//! saved again unchanged, like the window history (dropped instead with
//! `--state-drop-windows`, whose file is for a build that reads version 1).
//!
//! **Failed saves are visible** as `uniqd_state_save_failures_total` and
//! `uniqd_state_last_save_timestamp_seconds` ([`metrics`]); `/readyz` stays
//! ready (a replica that cannot save still counts correctly, and taking it out
//! of the load balancer would lose traffic, not save it).
//!
//! **Loading never resets silently.** A missing file is a fresh start (logged
//! at info). Any other failure (unreadable, not a state file, truncated, bad
//! checksum, unknown version) stops the start with a message naming the file
//! and the check that failed, unless `reset_on_error` is set; then the bad
//! file is renamed to `<file>.corrupt-<unix seconds>` (kept for inspection)
//! and the service starts empty, logging an error.

use std::fs;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use uniqd_core::{Groups, GroupsRestored, StateError, StateSections, UniqueCounter, WindowRing};

mod files;
pub mod lock;
pub mod metrics;

pub use files::{resolve_links, write_atomically};
pub use lock::StateLock;
pub use metrics::{SaveStatus, StateCollector};

/// Where and how often to save the counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// The state file.
    pub path: PathBuf,
    /// Time between periodic saves.
    pub interval: Duration,
    /// Start empty (keeping the bad file aside) instead of refusing to start
    /// when the file cannot be loaded.
    pub reset_on_error: bool,
    /// With time windows off, save without the file's window history
    /// (version 1) instead of carrying it through (`--state-drop-windows`).
    pub drop_windows: bool,
}

/// The service's counter: loaded from the state file if one is configured
/// (after locking it and resolving a symbolic link; then also written once,
/// so a path that cannot be written fails the start rather than the first
/// save), else empty; plus the [`Saver`] to run, which holds the lock. The
/// saved window slots are restored into `windows` when given, and carried
/// through unchanged when not; the same for the saved groups and `groups`
/// (the counters and the `--group-by` field they count).
///
/// # Errors
///
/// Another process holds the state file's lock (`ResourceBusy`, see
/// [`StateLock::acquire`]); see [`load`]; or the first write failed.
pub async fn open(
    config: Option<&StateConfig>,
    threshold: usize,
    windows: Option<&Arc<WindowRing>>,
    groups: Option<(&Arc<Groups>, &str)>,
) -> io::Result<(Arc<UniqueCounter>, Option<Saver>)> {
    let Some(config) = config else {
        return Ok((Arc::new(UniqueCounter::with_threshold(threshold)), None));
    };
    if config.drop_windows && windows.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--state-drop-windows drops the time window history from the state file and \
             needs --windows off",
        ));
    }
    let resolved = resolve_links(&config.path)?;
    if resolved != config.path {
        tracing::info!(
            path = %config.path.display(),
            target = %resolved.display(),
            "the state file is a symbolic link: loading and saving its target"
        );
    }
    let config = StateConfig {
        path: resolved,
        ..config.clone()
    };
    let lock = StateLock::acquire(&config.path)?;
    let groups_only = groups.map(|(g, field)| (g.as_ref(), field));
    let (counter, mut carried) =
        load_state(&config, threshold, windows.map(Arc::as_ref), groups_only)?;
    if config.drop_windows && carried.windows.take().is_some() {
        tracing::warn!(
            path = %config.path.display(),
            "--state-drop-windows: the time window history is removed from the state file \
             at the first save (format version 1)"
        );
    }
    if config.drop_windows && carried.groups.take().is_some() {
        tracing::warn!(
            path = %config.path.display(),
            "--state-drop-windows: the groups (saved with --group-by, now off) are removed \
             from the state file at the first save (format version 1)"
        );
    }
    let counter = Arc::new(counter);
    let mut saver = Saver::new(Arc::clone(&counter), windows.cloned(), &config);
    if let Some((groups, field)) = groups {
        saver = saver.with_groups(Arc::clone(groups), field);
    }
    saver.carried_windows = carried.windows;
    saver.carried_groups = carried.groups;
    saver.lock = Some(lock);
    saver.save().await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot write the state file {}: {e}; refusing to start",
                config.path.display()
            ),
        )
    })?;
    Ok((counter, Some(saver)))
}

/// Loads the counter from `config.path`, or an empty one if there is no
/// file yet; the window slots the file holds (format version 2) are merged
/// into `windows` when given, those the ring no longer retains dropped.
/// Neither locks nor resolves links ([`open`] does).
///
/// # Errors
///
/// `InvalidData` for a file that is not a loadable state, other I/O errors
/// as they come (both unless `reset_on_error`, which still fails if the bad
/// file cannot be moved aside). The message names the file and the problem.
/// Nothing is restored from a file that does not load as a whole.
pub fn load(
    config: &StateConfig,
    threshold: usize,
    windows: Option<&WindowRing>,
) -> io::Result<UniqueCounter> {
    load_state(config, threshold, windows, None).map(|(counter, _)| counter)
}

/// The sections of a loaded file that are saved again as they are: the
/// window history with time windows off, the groups with `--group-by` off.
#[derive(Debug, Default)]
struct Carried {
    windows: Option<Vec<u8>>,
    groups: Option<Vec<u8>>,
}

/// Decodes a state file: the counter; the window slots merged into `windows`
/// and the groups into `groups` (the counters and their `--group-by` field)
/// when given, else their sections kept as they are (and said so, unless
/// `dropping`: `--state-drop-windows` removes them, and says that instead).
/// Every section is checked before anything is restored.
fn decode_state(
    bytes: &[u8],
    threshold: usize,
    windows: Option<&WindowRing>,
    groups: Option<(&Groups, &str)>,
    dropping: bool,
) -> Result<(UniqueCounter, usize, Carried), StateError> {
    let (counter, sections) = UniqueCounter::from_state_with_sections(bytes, threshold)?;
    let saved_field = sections
        .groups
        .map(Groups::check_state)
        .transpose()
        .map_err(StateError::Groups)?;
    let mut carried = Carried::default();
    let window_slots = match (windows, sections.windows) {
        (Some(ring), Some(section)) => ring.restore_state(section).map_err(StateError::Windows)?,
        (None, section) => {
            carried.windows = section.map(<[u8]>::to_vec);
            0
        }
        (Some(_), None) => 0,
    };
    match (groups, sections.groups) {
        (Some((counters, field)), Some(section)) => {
            match counters
                .restore_state(section, field)
                .map_err(StateError::Groups)?
            {
                GroupsRestored::Loaded { tracked, folded } => tracing::info!(
                    tracked,
                    folded_into_other = folded,
                    max_groups = counters.max_groups(),
                    "groups loaded from the state file"
                ),
                GroupsRestored::OtherField(saved) => tracing::warn!(
                    saved_field = %saved,
                    field,
                    "the state file's groups were counted by another --group-by field: \
                     dropped (groups start from zero; the total is loaded)"
                ),
            }
        }
        (None, Some(section)) => {
            if !dropping {
                tracing::warn!(
                    saved_field = saved_field.as_deref().unwrap_or_default(),
                    "--group-by is off: the groups in the state file are kept as they are \
                     (saved again unchanged, not updated) for when it is on again"
                );
            }
            carried.groups = Some(section.to_vec());
        }
        (_, None) => {}
    }
    Ok((counter, window_slots, carried))
}

/// [`load`], plus the file's sections that are not loaded (time windows off,
/// `--group-by` off), to be saved again unchanged; restores the groups into
/// `groups` when given.
fn load_state(
    config: &StateConfig,
    threshold: usize,
    windows: Option<&WindowRing>,
    groups: Option<(&Groups, &str)>,
) -> io::Result<(UniqueCounter, Carried)> {
    let path = &config.path;
    let problem = match fs::read(path) {
        Ok(bytes) => match decode_state(&bytes, threshold, windows, groups, config.drop_windows) {
            Ok((counter, window_slots, carried)) => {
                tracing::info!(
                    path = %path.display(),
                    estimate = counter.estimate(),
                    phase = counter.phase().as_str(),
                    window_slots,
                    "state loaded"
                );
                if carried.windows.is_some() && !config.drop_windows {
                    tracing::warn!(
                        path = %path.display(),
                        "time windows are off: the window history in the state file is \
                         kept as it is (saved again unchanged, not updated) for when they \
                         are on again"
                    );
                }
                return Ok((counter, carried));
            }
            Err(e) => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::info!(path = %path.display(), "no state file yet; starting empty");
            return Ok((UniqueCounter::with_threshold(threshold), Carried::default()));
        }
        Err(e) => e,
    };
    if !config.reset_on_error {
        return Err(io::Error::new(
            problem.kind(),
            format!(
                "cannot load state file {}: {problem}; refusing to start with an empty count \
                 (repair or move the file, or pass --state-reset-on-error to start empty)",
                path.display()
            ),
        ));
    }
    let aside = corrupt_path(path);
    fs::rename(path, &aside).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot load state file {} ({problem}) and cannot move it aside to {}: {e}",
                path.display(),
                aside.display()
            ),
        )
    })?;
    tracing::error!(
        path = %path.display(),
        moved_to = %aside.display(),
        error = %problem,
        "STATE FILE UNUSABLE: starting with an EMPTY count (--state-reset-on-error); \
         the bad file was kept"
    );
    Ok((UniqueCounter::with_threshold(threshold), Carried::default()))
}

/// `<file>.corrupt-<unix seconds>`.
fn corrupt_path(path: &Path) -> PathBuf {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{seconds}"));
    PathBuf::from(name)
}

/// Saves `counter` (and the window ring and the groups, when on) to the state
/// file when their state differs from the last save.
#[derive(Debug)]
pub struct Saver {
    counter: Arc<UniqueCounter>,
    windows: Option<Arc<WindowRing>>,
    /// With windows off: the loaded file's window section, saved again unchanged.
    carried_windows: Option<Vec<u8>>,
    /// With `--group-by`: the counters and the field they count.
    groups: Option<(Arc<Groups>, String)>,
    /// With `--group-by` off: the loaded file's groups section, saved again unchanged.
    carried_groups: Option<Vec<u8>>,
    path: PathBuf,
    interval: Duration,
    last: Option<Vec<u8>>,
    status: Arc<SaveStatus>,
    /// The state file's lock (from [`open`]), released when the saver is dropped: after the
    /// final save.
    lock: Option<StateLock>,
}

impl Saver {
    /// A saver for `counter` and `windows` per `config`; the first
    /// [`save`](Self::save) always writes. It neither locks the file nor
    /// resolves links: [`open`] does both.
    #[must_use]
    pub fn new(
        counter: Arc<UniqueCounter>,
        windows: Option<Arc<WindowRing>>,
        config: &StateConfig,
    ) -> Self {
        Self {
            counter,
            windows,
            carried_windows: None,
            groups: None,
            carried_groups: None,
            path: config.path.clone(),
            interval: config.interval,
            last: None,
            status: Arc::new(SaveStatus::default()),
            lock: None,
        }
    }

    /// Saves `groups` too, as counted by the `--group-by` field `field` (format version 3).
    #[must_use]
    pub fn with_groups(mut self, groups: Arc<Groups>, field: &str) -> Self {
        self.groups = Some((groups, field.to_owned()));
        self
    }

    /// The save counters, for [`StateCollector`].
    #[must_use]
    pub fn status(&self) -> Arc<SaveStatus> {
        Arc::clone(&self.status)
    }

    /// The lock file, when the saver holds the lock (it came from [`open`]).
    #[must_use]
    pub fn lock_path(&self) -> Option<&Path> {
        self.lock.as_ref().map(StateLock::path)
    }

    /// Writes the state if it changed since the last successful write;
    /// returns whether it wrote. The file system work runs on tokio's
    /// blocking pool. Failures count in [`status`](Self::status).
    ///
    /// # Errors
    ///
    /// The write failed (the previous file is intact; the next call retries).
    pub async fn save(&mut self) -> io::Result<bool> {
        let result = self.write_if_changed().await;
        match &result {
            Ok(_) => self.status.saved(),
            Err(_) => self.status.failed(),
        }
        result
    }

    async fn write_if_changed(&mut self) -> io::Result<bool> {
        let ring = self.windows.as_ref().map(|ring| ring.to_state());
        let groups = self.groups.as_ref().map(|(g, field)| g.to_state(field));
        let bytes = self.counter.to_state_with_sections(StateSections {
            windows: ring.as_deref().or(self.carried_windows.as_deref()),
            groups: groups.as_deref().or(self.carried_groups.as_deref()),
        });
        if self.last.as_ref() == Some(&bytes) {
            return Ok(false);
        }
        let path = self.path.clone();
        let bytes =
            tokio::task::spawn_blocking(move || write_atomically(&path, &bytes).map(|()| bytes))
                .await
                .map_err(io::Error::other)??;
        self.last = Some(bytes);
        Ok(true)
    }

    /// Saves every interval until `stop` resolves, then once more (the
    /// final save, after the ingest drain). Periodic failures are logged and
    /// retried at the next tick.
    ///
    /// # Errors
    ///
    /// The final save failed: the count since the last good save is lost.
    pub async fn run(mut self, stop: impl Future<Output = ()>) -> io::Result<()> {
        let interval = self.interval;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop = std::pin::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = ticks.tick() => match self.save().await {
                    Ok(wrote) => tracing::debug!(path = %self.path.display(), wrote, "state saved"),
                    Err(error) => tracing::error!(
                        path = %self.path.display(), %error,
                        "cannot save state; keeping the previous file, retrying next interval"
                    ),
                },
            }
        }
        self.save().await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("final save of {} failed: {e}", self.path.display()),
            )
        })?;
        tracing::info!(
            path = %self.path.display(),
            estimate = self.counter.estimate(),
            "state saved on shutdown"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
