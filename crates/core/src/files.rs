//! Files the wizard keeps: written whole or not at all, and one writer per tenant at a time.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` so that a crash or a full disk leaves either the old file or the
/// new one, never half of either: a temporary file next to it, flushed to disk, renamed over
/// it, and the directory flushed too. `private` files are readable by the owner only.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // The rename itself is durable only once the directory is (POSIX); Windows has no
    // directory handles to flush.
    #[cfg(unix)]
    File::open(&dir)?.sync_all()?;
    Ok(())
}

/// Held while the wizard writes to one tenant (apply, Undo): the desktop app and the CLI
/// share the data directory, and two applies at once would each plan from a state the other
/// is changing. Released when dropped, or by the OS when the process ends (a crash leaves
/// nothing to clean up).
#[derive(Debug)]
pub struct TenantLock {
    _file: File,
}

/// Another Entra Setup holds the tenant's lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("Another Entra Setup (the desktop app or the command line) is applying to or undoing in this tenant{holder}. Wait for it to finish, then try again; nothing was changed. (Lock file: {path})")]
    Busy { holder: String, path: String },
    #[error("Could not open the lock file {path}: {detail}")]
    Io { path: String, detail: String },
}

impl TenantLock {
    /// Takes the lock of the tenant whose journals are in `dir`, or says who has it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(".lock");
        let io = |e: std::io::Error| LockError::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // The holder wrote who it is; some systems refuse reads of a locked file.
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .map(|s| crate::redact::printable(s.trim()))
                    .filter(|s| !s.is_empty())
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                return Err(LockError::Busy {
                    holder,
                    path: path.display().to_string(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let program = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "entra-setup".into());
        let _ = file.set_len(0);
        let _ = writeln!(
            file,
            "{program}, process {}, since {}",
            std::process::id(),
            chrono::Utc::now().format("%H:%M:%S UTC")
        );
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_told_who_holds_the_tenant() {
        let dir = std::env::temp_dir().join(format!("entra-setup-lock-{}", uuid::Uuid::new_v4()));
        let first = TenantLock::acquire(&dir).unwrap();
        let e = TenantLock::acquire(&dir).unwrap_err().to_string();
        assert!(e.starts_with("Another Entra Setup"), "{e}");
        assert!(
            e.contains(&format!("process {}", std::process::id())),
            "{e}"
        );
        drop(first);
        TenantLock::acquire(&dir).expect("free again once the first is dropped");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_atomic_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("entra-setup-atomic-{}", uuid::Uuid::new_v4()));
        let path = dir.join("settings.json");
        write_atomic(&path, b"{\"a\": 1, \"long\": \"xxxxxxxx\"}", true).unwrap();
        write_atomic(&path, b"{\"a\": 2}", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\": 2}");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A directory where the file should go: an error, and the directory is untouched.
        assert!(write_atomic(&dir, b"x", false).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
