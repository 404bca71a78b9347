//! The state file's lock: one process per state file. Two processes saving to one file would
//! each overwrite the other's saves (the last to save wins, the other's addresses are gone),
//! so the first takes an advisory exclusive lock (`flock`, through std's `File::try_lock`) on
//! `<state file>.lock` and holds it for its whole life; a second refuses to start with a
//! message naming the file and the holder (pid, host and start time, which the holder writes
//! into the lock file).
//!
//! The lock is on a sidecar file, not on the state file: every save renames a new file over
//! the state file, so a lock on the state file would stay with the old, unlinked inode and
//! the next process would lock the new one. The lock file is never renamed or removed
//! (removing it on exit would let a process lock an unlinked file while another creates a
//! new one); a lock file left behind is harmless, since the kernel releases the lock when
//! its holder exits, however it exits (SIGKILL included).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// `<state file>.lock`, beside the state file (the resolved path: see
/// [`resolve_links`](super::files::resolve_links)).
pub fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// An exclusive lock on a state file, held until dropped (or the process exits).
#[derive(Debug)]
pub struct StateLock {
    /// Holds the `flock`; closing the file releases it.
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// Locks `state` (its `.lock` sidecar) for this process, without waiting.
    ///
    /// # Errors
    ///
    /// `ResourceBusy` when another process (or another open in this one) holds the lock: the
    /// message names the state file, the lock file and what the holder wrote about itself.
    /// Other I/O errors opening or locking the lock file, with its name.
    pub fn acquire(state: &Path) -> io::Result<Self> {
        let path = lock_path(state);
        let named = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot lock the state file {}: {}: {e}",
                    state.display(),
                    path.display()
                ),
            )
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot write the state file {}: cannot create its lock file {}: {e}; \
                         refusing to start",
                        state.display(),
                        path.display()
                    ),
                )
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // Best effort: the holder may be between truncating and writing.
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "holder unknown".to_owned(),
                    text => format!("held by {text}"),
                };
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "state file {} is in use by another uniqd process ({holder}; lock file \
                         {}); refusing to start: two processes on one state file overwrite \
                         each other's saves. Stop the other process or give this one its own \
                         --state-file",
                        state.display(),
                        path.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(named(e)),
        }
        // Who holds it, for the message of the next process that tries.
        file.set_len(0).map_err(named)?;
        file.write_all(holder_line().as_bytes()).map_err(named)?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `pid=<pid> host=<hostname> started=<UTC time>`.
fn holder_line() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let host = if host.is_empty() {
        String::new()
    } else {
        format!(" host={host}")
    };
    format!(
        "pid={}{host} started={}\n",
        std::process::id(),
        utc(seconds)
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix seconds (Howard Hinnant's `civil_from_days`).
fn utc(seconds: u64) -> String {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(utc(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
