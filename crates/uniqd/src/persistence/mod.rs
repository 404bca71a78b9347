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
//! **Loading never resets silently.** A missing file is a fresh start (logged
//! at info). Any other failure (unreadable, not a state file, truncated, bad
//! checksum, unknown version) stops the start with a message naming the file
//! and the check that failed, unless `reset_on_error` is set; then the bad
//! file is renamed to `<file>.corrupt-<unix seconds>` (kept for inspection)
//! and the service starts empty, logging an error.

use std::ffi::OsString;
use std::fs::{self, File};
use std::future::Future;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use uniqd_core::{UniqueCounter, WindowRing};

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
}

/// The service's counter: loaded from the state file if one is configured
/// (then also written once, so a path that cannot be written fails the start
/// rather than the first save), else empty; plus the [`Saver`] to run. The
/// saved window slots are restored into `windows` when given.
///
/// # Errors
///
/// See [`load`]; or the first write failed.
pub async fn open(
    config: Option<&StateConfig>,
    threshold: usize,
    windows: Option<&Arc<WindowRing>>,
) -> io::Result<(Arc<UniqueCounter>, Option<Saver>)> {
    let Some(config) = config else {
        return Ok((Arc::new(UniqueCounter::with_threshold(threshold)), None));
    };
    let counter = Arc::new(load(config, threshold, windows.map(Arc::as_ref))?);
    let mut saver = Saver::new(Arc::clone(&counter), windows.cloned(), config);
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
    let path = &config.path;
    let problem = match fs::read(path) {
        Ok(bytes) => {
            let loaded = match windows {
                Some(ring) => UniqueCounter::from_state_with_windows(&bytes, threshold, ring),
                None => UniqueCounter::from_state(&bytes, threshold).map(|c| (c, 0)),
            };
            match loaded {
                Ok((counter, window_slots)) => {
                    tracing::info!(
                        path = %path.display(),
                        estimate = counter.estimate(),
                        phase = counter.phase().as_str(),
                        window_slots,
                        "state loaded"
                    );
                    return Ok(counter);
                }
                Err(e) => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::info!(path = %path.display(), "no state file yet; starting empty");
            return Ok(UniqueCounter::with_threshold(threshold));
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
    Ok(UniqueCounter::with_threshold(threshold))
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

/// Writes `bytes` to `path` atomically and durably (see the module docs).
///
/// # Errors
///
/// Any failing step; the temporary file is removed and `path` is untouched.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("state file {} has no file name", path.display()),
        )
    })?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened for syncing here; the rename is as durable
/// as the platform makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Saves `counter` (and the window ring, when on) to the state file when
/// their state differs from the last save.
#[derive(Debug)]
pub struct Saver {
    counter: Arc<UniqueCounter>,
    windows: Option<Arc<WindowRing>>,
    path: PathBuf,
    interval: Duration,
    last: Option<Vec<u8>>,
}

impl Saver {
    /// A saver for `counter` and `windows` per `config`; the first
    /// [`save`](Self::save) always writes.
    #[must_use]
    pub fn new(
        counter: Arc<UniqueCounter>,
        windows: Option<Arc<WindowRing>>,
        config: &StateConfig,
    ) -> Self {
        Self {
            counter,
            windows,
            path: config.path.clone(),
            interval: config.interval,
            last: None,
        }
    }

    /// Writes the state if it changed since the last successful write;
    /// returns whether it wrote. The file system work runs on tokio's
    /// blocking pool.
    ///
    /// # Errors
    ///
    /// The write failed (the previous file is intact; the next call retries).
    pub async fn save(&mut self) -> io::Result<bool> {
        let bytes = match &self.windows {
            Some(ring) => self.counter.to_state_with_windows(ring),
            None => self.counter.to_state(),
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
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("uniqd-persistence-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn config(path: PathBuf, reset_on_error: bool) -> StateConfig {
        StateConfig {
            path,
            interval: Duration::from_secs(10),
            reset_on_error,
        }
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary_file() {
        let dir = temp_dir("atomic");
        let path = dir.join("state");
        write_atomically(&path, b"one").expect("first write");
        write_atomically(&path, b"two").expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [OsString::from("state")]);
        // A directory that does not exist: an error, nothing created.
        assert!(write_atomically(&dir.join("missing/state"), b"x").is_err());
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn missing_file_is_a_fresh_start() {
        let dir = temp_dir("missing");
        let counter = load(&config(dir.join("state"), false), 100, None).expect("fresh");
        assert_eq!(counter.estimate(), 0);
        assert_eq!(counter.threshold(), 100);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn corrupt_file_refuses_or_is_moved_aside() {
        let dir = temp_dir("corrupt");
        let path = dir.join("state");
        let counter = UniqueCounter::with_threshold(100);
        counter.insert_str("1.2.3.4").expect("valid");
        let mut bytes = counter.to_state();
        bytes[40] ^= 1;
        fs::write(&path, &bytes).expect("write");

        let err = load(&config(path.clone(), false), 100, None).expect_err("must refuse");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let message = err.to_string();
        assert!(message.contains("CRC-32"), "{message}");
        assert!(message.contains("--state-reset-on-error"), "{message}");
        assert_eq!(fs::read(&path).expect("untouched"), bytes);

        let counter = load(&config(path.clone(), true), 100, None).expect("reset");
        assert_eq!(counter.estimate(), 0);
        assert!(!path.exists());
        let kept: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(kept.len(), 1);
        assert!(kept[0].starts_with("state.corrupt-"), "{kept:?}");
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[tokio::test]
    async fn saver_writes_only_on_change_and_round_trips() {
        let dir = temp_dir("saver");
        let path = dir.join("state");
        let counter = Arc::new(UniqueCounter::with_threshold(100));
        let mut saver = Saver::new(Arc::clone(&counter), None, &config(path.clone(), false));
        assert!(saver.save().await.expect("first save writes"));
        assert!(!saver.save().await.expect("unchanged"));
        counter.insert_str("10.0.0.1").expect("valid");
        counter.insert_str("::1").expect("valid");
        assert!(saver.save().await.expect("changed"));
        let loaded = load(&config(path, false), 100, None).expect("loads");
        assert_eq!(loaded.estimate(), 2);
        assert_eq!(loaded.registers(), counter.registers());
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// A ring on a hand-driven clock at a whole hour (2027-01-15T08:00:00Z).
    fn ring_at(now_ms: u64) -> (Arc<uniqd_core::ManualClock>, Arc<WindowRing>) {
        let clock = Arc::new(uniqd_core::ManualClock::new(now_ms));
        let ring = Arc::new(WindowRing::new(0, clock.clone()));
        (clock, ring)
    }

    fn window(ring: &WindowRing, span: &str) -> u64 {
        let span = uniqd_core::Span::parse(span).expect("a span");
        ring.count(span)
            .expect("a window the ring answers")
            .estimate
    }

    #[tokio::test]
    async fn windows_are_saved_with_the_counter_and_stale_slots_dropped() {
        // A whole hour: 2027-01-15T08:00:00Z.
        const T0: u64 = 1_800_000_000_000;
        let dir = temp_dir("windows");
        let path = dir.join("state");
        let counter = Arc::new(UniqueCounter::with_threshold(100));
        let (clock, ring) = ring_at(T0);
        // Minute 0: two addresses; minute 10: one more.
        for (ip, at) in [
            ("10.0.0.1", T0),
            ("10.0.0.2", T0),
            ("10.0.0.3", T0 + 600_000),
        ] {
            let hash = uniqd_core::hash_ip_str(ip).expect("valid");
            counter.insert_hash(hash);
            ring.insert_hash_at(hash, None, at);
        }
        clock.set(T0 + 600_000);
        let mut saver = Saver::new(
            Arc::clone(&counter),
            Some(Arc::clone(&ring)),
            &config(path.clone(), false),
        );
        assert!(saver.save().await.expect("first save writes"));
        assert!(!saver.save().await.expect("unchanged"));
        let bytes = fs::read(&path).expect("saved");
        assert_eq!(&bytes[8..12], &2u32.to_le_bytes(), "format version 2");

        // A restart a minute later: every window as before.
        let (_, later) = ring_at(T0 + 660_000);
        let loaded = load(&config(path.clone(), false), 100, Some(&later)).expect("loads");
        assert_eq!(loaded.estimate(), 3);
        assert_eq!((window(&later, "2m"), window(&later, "1h")), (1, 3));
        assert_eq!(window(&later, "2h"), 3);

        // Two hours later the minute slots have left the ring; the hour slot stays.
        let (_, much_later) = ring_at(T0 + 2 * 3_600_000);
        load(&config(path.clone(), false), 100, Some(&much_later)).expect("loads");
        assert_eq!(window(&much_later, "1h"), 0);
        assert_eq!(window(&much_later, "3h"), 3);

        // With windows off the same file loads the counter alone.
        assert_eq!(
            load(&config(path, false), 100, None)
                .expect("loads")
                .estimate(),
            3
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_version_1_file_loads_with_windows_on() {
        let dir = temp_dir("version1");
        let path = dir.join("state");
        let counter = UniqueCounter::with_threshold(100);
        counter.insert_str("1.2.3.4").expect("valid");
        let bytes = counter.to_state();
        assert_eq!(&bytes[8..12], &1u32.to_le_bytes(), "format version 1");
        fs::write(&path, &bytes).expect("write");
        let (_, ring) = ring_at(1_800_000_000_000);
        let loaded = load(&config(path, false), 100, Some(&ring)).expect("loads");
        assert_eq!(loaded.estimate(), 1);
        assert_eq!(window(&ring, "7d"), 0);
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
