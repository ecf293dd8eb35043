//! The one "I/O error with a path" of the guest and disk code.
//!
//! [`PathError`] renders as `{what} {path}: {cause}`, e.g.
//! `open for probing /dev/sda: Permission denied (os error 13)`; `what` is
//! a short verb phrase that reads before the path. Build one with
//! [`WithPath::with_path`] on any `io::Result` or `nix::Result`:
//!
//! ```
//! use b2d::errors::{PathError, WithPath};
//! fn read(p: &std::path::Path) -> Result<String, PathError> {
//!     std::fs::read_to_string(p).with_path("read", p)
//! }
//! let e = read("/nonexistent".as_ref()).unwrap_err();
//! assert!(e.to_string().starts_with("read /nonexistent: "));
//! ```
//!
//! Where an `io::Error` must travel on (the [`crate::sys::Sys`] seam
//! returns `io::Result`), `io::Error::from(path_error)` keeps the kind and
//! the message, and [`os_error`] still finds the errno underneath.

use std::io;
use std::path::{Path, PathBuf};

/// An I/O error and the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {source}", path.display())]
pub struct PathError {
    /// What was being done, as a verb phrase before the path (`open`,
    /// `write the GPT on`, `create mount point`).
    pub what: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl PathError {
    pub fn new(what: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        PathError {
            what,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// As [`PathError::new`], unless `source` already is a `PathError`
    /// about the same path (one that came through the seam): then that
    /// one, so no message names a path twice.
    pub fn wrap(what: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        let path = path.as_ref();
        let same = source
            .get_ref()
            .and_then(|r| r.downcast_ref::<PathError>())
            .is_some_and(|p| p.path == path);
        if !same {
            return PathError::new(what, path, source);
        }
        let kind = source.kind();
        match source.into_inner().map(|b| b.downcast::<PathError>()) {
            Some(Ok(inner)) => *inner,
            Some(Err(other)) => PathError::new(what, path, io::Error::new(kind, other)),
            None => PathError::new(what, path, io::Error::from(kind)),
        }
    }

    /// The underlying error's kind.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

/// Keeps the kind; the message and the cause chain travel inside.
impl From<PathError> for io::Error {
    fn from(e: PathError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// `.with_path("what", path)` on a result whose error is an I/O error.
pub trait WithPath<T> {
    fn with_path(self, what: &'static str, path: impl AsRef<Path>) -> Result<T, PathError>;
}

impl<T> WithPath<T> for io::Result<T> {
    fn with_path(self, what: &'static str, path: impl AsRef<Path>) -> Result<T, PathError> {
        self.map_err(|e| PathError::wrap(what, path, e))
    }
}

impl<T> WithPath<T> for nix::Result<T> {
    fn with_path(self, what: &'static str, path: impl AsRef<Path>) -> Result<T, PathError> {
        self.map_err(|e| PathError::new(what, path, io::Error::from(e)))
    }
}

/// The errno behind `e`, looking through the context wrapped around it
/// (an `io::Error` carrying a [`PathError`], and so on).
pub fn os_error(e: &io::Error) -> Option<i32> {
    if let Some(n) = e.raw_os_error() {
        return Some(n);
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(err) = cur {
        if let Some(n) = err
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return Some(n);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_path_cause_and_keeps_the_errno() {
        let e = std::fs::File::open("/nonexistent/x")
            .with_path("open", "/nonexistent/x")
            .unwrap_err();
        assert!(e.to_string().starts_with("open /nonexistent/x: "), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert!(io.to_string().starts_with("open /nonexistent/x: "), "{io}");
        assert_eq!(os_error(&io), Some(libc::ENOENT));
        assert_eq!(
            crate::error_chain(&io),
            io.to_string(),
            "the cause is not repeated"
        );
    }

    #[test]
    fn a_path_the_seam_already_named_is_not_named_twice() {
        let seam: io::Error =
            PathError::new("mount", "/mnt/sda1", io::Error::from_raw_os_error(16)).into();
        let e = Err::<(), _>(seam)
            .with_path("mount", "/mnt/sda1")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("mount /mnt/sda1: {}", io::Error::from_raw_os_error(16))
        );
        let seam: io::Error =
            PathError::new("mount", "/mnt/sda1", io::Error::from_raw_os_error(16)).into();
        let e = Err::<(), _>(seam)
            .with_path("mount ext4 from", "/dev/sda1")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("mount ext4 from /dev/sda1: mount /mnt/sda1: "),
            "{e}"
        );
    }

    #[test]
    fn nix_errors_carry_the_path_too() {
        let r: nix::Result<()> = Err(nix::errno::Errno::ENODEV);
        let e = r
            .with_path("finit_module", "/lib/modules/hv_vmbus.ko")
            .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("finit_module /lib/modules/hv_vmbus.ko: "));
        assert_eq!(os_error(&e.into()), Some(libc::ENODEV));
        assert_eq!(os_error(&io::Error::other("no errno")), None);
    }
}
