//! Files the wizard keeps: written whole or not at all, and one writer per tenant at a time.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a name is not a plain file name the wizard may write inside a folder it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{name}' is not a plain file name ({why}): use letters, digits, '.', '-' and '_' only, such as pomerium-config.yaml")]
pub struct FileNameError {
    pub name: String,
    pub why: &'static str,
}

/// Checks that `name` is a plain file name: it stays in the folder it is joined to on every
/// system (no separators, no `..`, no drive or device prefix, not hidden), and is short and of
/// a safe character set. A provider profile is shared data, so a name it gives decides where a
/// file with a secret in it lands on the admin's computer.
pub fn plain_file_name(name: &str) -> Result<(), FileNameError> {
    let bad = |why| {
        Err(FileNameError {
            name: crate::redact::echo(name, 80),
            why,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 100 {
        return bad("it is longer than 100 characters");
    }
    if name.contains(['/', '\\']) {
        return bad("it contains a path separator");
    }
    if name.contains("..") {
        return bad("it contains '..'");
    }
    if name.starts_with('.') {
        return bad("it starts with '.'");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return bad("it contains a character other than letters, digits, '.', '-' and '_'");
    }
    // Names Windows keeps for devices, with or without an extension.
    let stem = name
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let device = ["CON", "PRN", "AUX", "NUL"].contains(&stem.as_str())
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if device {
        return bad("Windows reserves it for a device");
    }
    Ok(())
}

/// `dir` joined with a plain file name, checked again where it is used: the result is a direct
/// child of `dir`.
pub fn inside(dir: &Path, name: &str) -> Result<PathBuf, FileNameError> {
    plain_file_name(name)?;
    let path = dir.join(name);
    if path.parent() != Some(dir) || path.file_name().and_then(|n| n.to_str()) != Some(name) {
        return Err(FileNameError {
            name: crate::redact::echo(name, 80),
            why: "it does not stay in the folder",
        });
    }
    Ok(path)
}

/// Makes `dir` (and its parents) and keeps it the user's alone (0700 on Unix; on Windows the
/// per-user data and log folders are already readable by that user and administrators only).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Opens `path` to append to, made readable and writable by its owner only when new (journals,
/// lock files).
pub fn open_private(path: &Path, append: bool) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.create(true);
    if append {
        opts.append(true);
    } else {
        opts.read(true).write(true).truncate(false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Why a file the wizard was pointed at was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path} is not a regular file ({what}): name a file")]
    NotAFile { path: String, what: &'static str },
    #[error("{path} is larger than {limit} bytes: this is not the file Entra Setup expects")]
    TooLarge { path: String, limit: u64 },
    #[error("{path} cannot be read: {why}")]
    Io { path: String, why: String },
    #[error("{path} is not UTF-8 text")]
    NotText { path: String },
}

/// Reads a file the admin or a folder named, safely: only a regular file (a FIFO would block
/// forever, a device never ends), never more than `limit` bytes (checked while reading, not
/// only from the size the file claims), as UTF-8 text.
pub fn read_regular(path: &Path, limit: u64) -> Result<String, ReadError> {
    use std::io::Read;
    let shown = crate::redact::echo(&path.display().to_string(), 300);
    let io = |e: std::io::Error| ReadError::Io {
        path: shown.clone(),
        why: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        let ft = meta.file_type();
        let what = if ft.is_dir() {
            "a folder"
        } else {
            #[cfg(unix)]
            {
                use std::os::unix::fs::FileTypeExt;
                if ft.is_fifo() {
                    "a named pipe"
                } else if ft.is_char_device() || ft.is_block_device() {
                    "a device"
                } else if ft.is_socket() {
                    "a socket"
                } else {
                    "not a file"
                }
            }
            #[cfg(not(unix))]
            {
                "not a file"
            }
        };
        return Err(ReadError::NotAFile { path: shown, what });
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge { path: shown, limit });
    }
    // Opened without blocking where a FIFO could still be swapped in between the two calls.
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let f = opts.open(path).map_err(io)?;
    if !f.metadata().map_err(io)?.is_file() {
        return Err(ReadError::NotAFile {
            path: shown,
            what: "replaced while being read",
        });
    }
    let mut bytes = vec![];
    f.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { path: shown, limit });
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotText { path: shown })
}

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
        private_dir(dir).map_err(io)?;
        let mut file = open_private(&path, false).map_err(io)?;
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
    fn only_plain_file_names_stay_in_the_folder() {
        let dir = Path::new("/out");
        for ok in ["pomerium-config.yaml", "cloudflare.json", "a_b.1.txt"] {
            assert_eq!(inside(dir, ok).unwrap(), dir.join(ok), "{ok}");
        }
        for bad in [
            "../x",
            "../../.config/autostart/x.desktop",
            "/etc/passwd",
            "a/b.txt",
            "a\\b.txt",
            "C:\\x.txt",
            "..",
            ".bashrc",
            "",
            "x y.txt",
            "con.txt",
            "LPT1",
            "x\u{202e}txt.exe",
        ] {
            let e = inside(dir, bad).unwrap_err();
            assert!(e.to_string().contains("plain file name"), "{bad}: {e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_read_and_never_past_the_limit() {
        let dir = std::env::temp_dir().join(format!("read-regular-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("p.toml");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = read_regular(&fifo, 100).unwrap_err();
        assert!(e.to_string().contains("named pipe"), "{e}");
        let e = read_regular(&dir, 100).unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
        let e = read_regular(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(e.to_string().contains("a device"), "{e}");
        let big = dir.join("big.toml");
        std::fs::write(&big, vec![b'a'; 101]).unwrap();
        assert!(matches!(
            read_regular(&big, 100),
            Err(ReadError::TooLarge { .. })
        ));
        std::fs::write(&big, b"ok").unwrap();
        assert_eq!(read_regular(&big, 100).unwrap(), "ok");
        let _ = std::fs::remove_dir_all(dir);
    }

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
