//! State written atomically: temp file in the same directory, fsync,
//! rename over the target, fsync the directory. A crash leaves the old
//! file or the new one, never a torn one. Nothing is written through a
//! link: the temp file is opened with `O_NOFOLLOW`, and the rename
//! replaces a link at the target rather than what it points at.

use crate::errors::{PathError, WithPath};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Replace `path` with `data` (permissions `mode`); the error names the
/// step and the path.
pub fn write(path: &Path, data: &[u8], mode: u32) -> Result<(), PathError> {
    put(path, data, mode, true)
}

/// [`write()`] without the two flushes, for a file made again every boot
/// (this boot's server certificate): readers never see it torn, and what
/// a crash leaves of it is replaced at the next boot. On a machine's disk
/// each flush reaches the host's disk: the two per file cost about 1.4 s
/// of a warm boot for the three TLS files.
pub fn replace(path: &Path, data: &[u8], mode: u32) -> Result<(), PathError> {
    put(path, data, mode, false)
}

fn put(path: &Path, data: &[u8], mode: u32, durable: bool) -> Result<(), PathError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.b2d-tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .with_path("create temp for", path)?;
    f.write_all(data).with_path("write", path)?;
    // The umask may have narrowed `mode` at creation.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_path("chmod", path)?;
    if durable {
        f.sync_all().with_path("fsync", path)?;
    }
    std::fs::rename(&tmp, path).with_path("rename onto", path)?;
    if !durable {
        return Ok(());
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_path("fsync directory of", path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn a_failed_write_names_its_path_once() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("missing/config.json");
        let shown = p.display().to_string();
        for e in [
            write(&p, b"{}", 0o644).unwrap_err(),
            replace(&p, b"{}", 0o644).unwrap_err(),
        ] {
            let line = crate::error_chain(&e);
            assert_eq!(line.matches(&shown).count(), 1, "{line}");
            // Carried on as an io::Error and named again by a caller that
            // wraps it with the same path, still once.
            let again = Err::<(), _>(io::Error::from(e))
                .with_path("write", &p)
                .unwrap_err();
            let line = crate::error_chain(&again);
            assert_eq!(line.matches(&shown).count(), 1, "{line}");
            assert!(line.starts_with("create temp for "), "{line}");
        }
    }

    #[test]
    fn replaces_whole_with_mode_and_leaves_no_temp() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("userdata.tar");
        write(&p, b"abc", 0o600).unwrap();
        write(&p, b"defg", 0o644).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"defg");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let e = io::Error::from(write(&t.path().join("missing/x"), b"", 0o600).unwrap_err());
        assert!(e.to_string().contains("missing/x"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = write(&t.path().join("missing/x"), b"", 0o600).unwrap_err();
        assert_eq!(e.what, "create temp for");
        assert!(e.to_string().contains("missing/x"), "{e}");
    }

    #[test]
    fn a_link_at_the_temp_or_the_target_is_not_written_through() {
        let t = tempfile::tempdir().unwrap();
        let (p, victim) = (t.path().join("accel"), t.path().join("victim"));
        std::fs::write(&victim, "mine").unwrap();
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        replace(&p, b"new", 0o600).unwrap();
        assert!(std::fs::symlink_metadata(&p).unwrap().is_file());
        let tmp = t.path().join(".accel.b2d-tmp");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let e = write(&p, b"newer", 0o600).unwrap_err();
        assert_eq!(e.what, "create temp for");
        assert_eq!(std::fs::read(&victim).unwrap(), b"mine");
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn replace_is_the_same_swap_without_the_flushes() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("server-key.pem");
        std::fs::write(&p, "old").unwrap();
        replace(&p, b"new key", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new key");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let e = replace(&t.path().join("missing/x"), b"", 0o600).unwrap_err();
        assert_eq!(e.what, "create temp for");
    }
}
