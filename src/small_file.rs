//! A small file read whole, safely: a path a user or a guest could point
//! elsewhere (`--daemon-json /dev/zero`, a FIFO planted as `config.json`)
//! is read only if it is a regular file, and only up to a stated limit.
//!
//! The file is looked at before it is opened (a device is never opened:
//! opening some has effects), opened without waiting for a FIFO's writer,
//! looked at again through the open descriptor (what was swapped in
//! between is refused too), and read to at most `limit` bytes; one byte
//! more is an error naming the path and the limit.

use crate::errors::PathError;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// 1 MiB: what any JSON settings file b2d reads may hold.
pub const JSON_LIMIT: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SmallFileError {
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("{} is {kind}, not a regular file", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{} is larger than {} (the most b2d reads of it)", path.display(), size(*limit))]
    TooLarge { path: PathBuf, limit: u64 },
}

impl SmallFileError {
    /// The kind of the I/O error underneath (`NotFound` for a missing
    /// file); `InvalidInput` for a file refused by its type or size.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            SmallFileError::Io(e) => e.kind(),
            _ => io::ErrorKind::InvalidInput,
        }
    }

    /// What is wrong, without the path (for a message that names it
    /// already): "a FIFO, not a regular file", "larger than 1 MiB"…
    pub fn why(&self) -> String {
        match self {
            SmallFileError::Io(e) => format!("cannot {} it: {}", e.what, e.source),
            SmallFileError::NotAFile { kind, .. } => format!("{kind}, not a regular file"),
            SmallFileError::TooLarge { limit, .. } => format!("larger than {}", size(*limit)),
        }
    }

    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            SmallFileError::Io(e) => &e.path,
            SmallFileError::NotAFile { path, .. } | SmallFileError::TooLarge { path, .. } => path,
        }
    }
}

/// Keeps the kind; the message travels inside.
impl From<SmallFileError> for io::Error {
    fn from(e: SmallFileError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

fn size(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// What a file of type `t` is, for the error: "a FIFO", "a directory"…
fn kind_of(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// The bytes of regular file `path` (a symbolic link to one is fine), at
/// most `limit` of them.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, SmallFileError> {
    let io = |what: &'static str| move |e| SmallFileError::Io(PathError::new(what, path, e));
    let not_a_file = |t: std::fs::FileType| SmallFileError::NotAFile {
        path: path.to_path_buf(),
        kind: kind_of(t),
    };
    let before = std::fs::metadata(path).map_err(io("read"))?;
    if !before.is_file() {
        return Err(not_a_file(before.file_type()));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io("open"))?;
    let meta = f.metadata().map_err(io("read"))?;
    if !meta.is_file() {
        return Err(not_a_file(meta.file_type()));
    }
    let mut data = Vec::with_capacity(meta.len().min(limit) as usize);
    f.take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(io("read"))?;
    if data.len() as u64 > limit {
        return Err(SmallFileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(data)
}

/// [`read()`], or `None` when there is no such file.
pub fn read_if_there(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, SmallFileError> {
    match read(path, limit) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_or_a_link_to_one_is_read_whole() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("daemon.json");
        std::fs::write(&p, b"{}").unwrap();
        assert_eq!(read(&p, 2).unwrap(), b"{}");
        let link = t.path().join("link.json");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(read(&link, JSON_LIMIT).unwrap(), b"{}");
        assert_eq!(read_if_there(&t.path().join("nope"), 9).unwrap(), None);
        let e = read(&t.path().join("nope"), 9).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("read "), "{e}");
        assert!(e.to_string().contains("nope: "), "{e}");
    }

    #[test]
    fn one_byte_over_the_limit_is_refused_with_the_path_and_the_limit() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("big.json");
        std::fs::write(&p, vec![b' '; (1 << 20) + 1]).unwrap();
        let e = read(&p, JSON_LIMIT).unwrap_err();
        assert!(matches!(e, SmallFileError::TooLarge { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "{} is larger than 1 MiB (the most b2d reads of it)",
                p.display()
            )
        );
        assert_eq!(read(&p, (1 << 20) + 1).unwrap().len(), (1 << 20) + 1);
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_without_waiting() {
        let t = tempfile::tempdir().unwrap();
        let e = read(Path::new("/dev/zero"), JSON_LIMIT).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero is a character device, not a regular file"
        );
        let fifo = t.path().join("config.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read(&fifo, JSON_LIMIT).unwrap_err();
        assert!(e.to_string().contains("config.json is a FIFO"), "{e}");
        // Through a link, the same.
        let link = t.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let e = read(&link, JSON_LIMIT).unwrap_err();
        assert!(matches!(e, SmallFileError::NotAFile { .. }), "{e}");
        assert_eq!(e.path(), link);
        let e = read(t.path(), JSON_LIMIT).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        assert_eq!(e.why(), "a directory, not a regular file");
        let as_io: io::Error = e.into();
        assert_eq!(as_io.kind(), io::ErrorKind::InvalidInput);
    }
}
