//! File system steps of the state file: resolving a symbolic link to the file it names (so
//! saves write through the link instead of replacing it), and the atomic, durable write.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// How many links [`resolve_links`] follows before it gives up (Linux's `ELOOP` limit).
const MAX_LINKS: usize = 40;

/// The file `path` names once every symbolic link in its last component is followed: `path`
/// itself when it is not a link (or does not exist), else the link's target (relative targets
/// taken relative to the link's directory), and so on. The target need not exist: a dangling
/// link is a fresh start whose first save creates the target.
///
/// Saves rename a new file over the state file; renaming over a link would replace the link by
/// a regular file and leave its target stale, so uniqd resolves the link once at start and
/// writes to (and locks) the target. Directory links in the path need nothing: a rename
/// inside a directory works through them.
///
/// # Errors
///
/// A link that cannot be read, or a chain longer than 40 links (a loop).
pub fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot read the symbolic link {}: {e}", current.display()),
                    )
                })?;
                current = match current.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(io::Error::other(format!(
        "state file {}: more than {MAX_LINKS} symbolic links (a loop?)",
        path.display()
    )))
}

/// The directory a file of `path` lives in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically and durably (see the module docs of
/// [`persistence`](super)).
///
/// # Errors
///
/// Any failing step; the temporary file is removed and `path` is untouched.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
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
