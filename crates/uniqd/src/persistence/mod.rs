//! The optional state file (`--state-file`): load the counter (and the time
//! window ring, when on) at start, save them every interval and once more
//! after the ingest drain.
//!
//! The bytes are `uniqd_core`'s state format (`UniqueCounter::to_state`:
//! magic, version, CRC-32, the registers as a Redis dense HLL string at a
//! fixed offset, the exact set while exact; with time windows on, format
//! version 2, which adds the ring's per-minute and per-hour slots:
//! `UniqueCounter::to_state_with_windows`). Both versions load; window slots
//! older than the ring keeps at load time are dropped. This module only
//! decides when to write and makes each write atomic:
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

use uniqd_core::{UniqueCounter, WindowRing};

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
/// through unchanged when not.
///
/// # Errors
///
/// Another process holds the state file's lock (`ResourceBusy`, see
/// [`StateLock::acquire`]); see [`load`]; or the first write failed.
pub async fn open(
    config: Option<&StateConfig>,
    threshold: usize,
    windows: Option<&Arc<WindowRing>>,
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
    let (counter, mut carried) = load_state(&config, threshold, windows.map(Arc::as_ref))?;
    if config.drop_windows && carried.take().is_some() {
        tracing::warn!(
            path = %config.path.display(),
            "--state-drop-windows: the time window history is removed from the state file \
             at the first save (format version 1)"
        );
    }
    let counter = Arc::new(counter);
    let mut saver = Saver::new(Arc::clone(&counter), windows.cloned(), &config);
    saver.carried_windows = carried;
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
    load_state(config, threshold, windows).map(|(counter, _)| counter)
}

/// [`load`], plus the file's window section when `windows` is `None` (time
/// windows off), to be saved again unchanged.
fn load_state(
    config: &StateConfig,
    threshold: usize,
    windows: Option<&WindowRing>,
) -> io::Result<(UniqueCounter, Option<Vec<u8>>)> {
    let path = &config.path;
    let problem = match fs::read(path) {
        Ok(bytes) => {
            let loaded = match windows {
                Some(ring) => UniqueCounter::from_state_with_windows(&bytes, threshold, ring)
                    .map(|(c, slots)| (c, slots, None)),
                None => UniqueCounter::from_state_keeping_windows(&bytes, threshold)
                    .map(|(c, section)| (c, 0, section)),
            };
            match loaded {
                Ok((counter, window_slots, carried)) => {
                    tracing::info!(
                        path = %path.display(),
                        estimate = counter.estimate(),
                        phase = counter.phase().as_str(),
                        window_slots,
                        "state loaded"
                    );
                    if carried.is_some() && !config.drop_windows {
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
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::info!(path = %path.display(), "no state file yet; starting empty");
            return Ok((UniqueCounter::with_threshold(threshold), None));
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
    Ok((UniqueCounter::with_threshold(threshold), None))
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

/// Saves `counter` (and the window ring, when on) to the state file when
/// their state differs from the last save.
#[derive(Debug)]
pub struct Saver {
    counter: Arc<UniqueCounter>,
    windows: Option<Arc<WindowRing>>,
    /// With windows off: the loaded file's window section, saved again unchanged.
    carried_windows: Option<Vec<u8>>,
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
            path: config.path.clone(),
            interval: config.interval,
            last: None,
            status: Arc::new(SaveStatus::default()),
            lock: None,
        }
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
        let bytes = match (&self.windows, &self.carried_windows) {
            (Some(ring), _) => self.counter.to_state_with_windows(ring),
            (None, Some(section)) => self.counter.to_state_with_window_section(section),
            (None, None) => self.counter.to_state(),
        };
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
