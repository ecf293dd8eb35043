//! The write plan shared by all writers, and the one routine that puts it on
//! disk safely.
//!
//! A [`Layout`] is the final file length plus the few non-zero byte ranges
//! of the file. Everything not covered by a write stays a hole: the file is
//! extended with `set_len` (which allocates nothing on Linux filesystems that
//! support sparse files) before the writes land with positioned writes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::ImageError;
use crate::errors::{PathError, WithPath};

/// A file described as its length and its non-zero byte ranges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Final length of the file in bytes.
    pub len: u64,
    /// Non-overlapping `(offset, bytes)` ranges, all inside `len`.
    pub writes: Vec<(u64, Vec<u8>)>,
}

impl Layout {
    pub fn new(len: u64) -> Self {
        Layout {
            len,
            writes: Vec::new(),
        }
    }

    /// Record a write of `bytes` at `offset`, trimmed to its non-zero span:
    /// leading and trailing zeros are left to the hole, which reads back as
    /// zeros anyway, so e.g. an L2 table with one entry costs one fs block.
    pub fn put(&mut self, offset: u64, bytes: Vec<u8>) {
        debug_assert!(offset + bytes.len() as u64 <= self.len);
        let Some(first) = bytes.iter().position(|&b| b != 0) else {
            return;
        };
        // `first` is a non-zero byte, so the search from the end finds one.
        let last = bytes.iter().rposition(|&b| b != 0).unwrap_or(first);
        let bytes = if first == 0 && last + 1 == bytes.len() {
            bytes
        } else {
            bytes[first..=last].to_vec()
        };
        self.writes.push((offset + first as u64, bytes));
    }

    /// Materialise the whole file in memory (tests only: small sizes).
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; usize::try_from(self.len).expect("small test image")];
        for (off, bytes) in &self.writes {
            let off = *off as usize;
            v[off..off + bytes.len()].copy_from_slice(bytes);
        }
        v
    }
}

pub(crate) fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

pub(crate) fn div_ceil(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

pub(crate) fn round_up(a: u64, b: u64) -> Option<u64> {
    a.checked_next_multiple_of(b)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// 16 bytes that differ between images (time, pid, a counter), hashed.
/// Used for identifiers (vhd unique id, vmdk CID and UUIDs), not for secrets.
pub(crate) fn unique_bytes(salt: &[u8]) -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Sha256::new();
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(salt);
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    // Shape it as an RFC 4122 version 4 UUID so tools that care are happy.
    out[6] = (out[6] & 0x0f) | 0x40;
    out[8] = (out[8] & 0x3f) | 0x80;
    out
}

/// Write `plan` to `path`. Without `force` the file must not exist (O_EXCL).
/// With `force` an existing regular file is truncated and reused; anything
/// else (symlink, directory, device, fifo) is refused. A file this call
/// created is removed again if writing fails.
pub(crate) fn write_new(path: &Path, plan: &Layout, force: bool) -> Result<(), ImageError> {
    let (file, created) = open_target(path, force)?;
    let result = apply(&file, plan)
        .with_path("write", path)
        .map_err(ImageError::from);
    if result.is_err() && created {
        let _ = std::fs::remove_file(path);
    }
    result
}

fn open_target(path: &Path, force: bool) -> Result<(File, bool), ImageError> {
    let mut opts = OpenOptions::new();
    opts.write(true).mode(0o644);
    if !force {
        return match opts.create_new(true).open(path) {
            Ok(f) => Ok((f, true)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(PathError::new(
                "create",
                path,
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "already exists; refusing to overwrite it (pass --force to replace a regular file)",
                ),
            )
            .into()),
            Err(e) => Err(PathError::new("create", path, e).into()),
        };
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(not_regular(path, meta.file_type()));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return match opts.create_new(true).open(path) {
                Ok(f) => Ok((f, true)),
                Err(e) => Err(PathError::new("create", path, e).into()),
            };
        }
        Err(e) => return Err(PathError::new("look at", path, e).into()),
    }
    // Exists and was a regular file a moment ago: open without following a
    // symlink swapped in meanwhile, and re-check what we actually opened
    // before truncating it. O_NONBLOCK keeps a fifo from blocking the open.
    let file = opts
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .with_path("open", path)?;
    let meta = file.metadata().with_path("look at", path)?;
    if !meta.file_type().is_file() {
        return Err(not_regular(path, meta.file_type()));
    }
    file.set_len(0).with_path("truncate", path)?;
    Ok((file, false))
}

fn not_regular(path: &Path, ft: std::fs::FileType) -> ImageError {
    ImageError::invalid(
        path,
        format!(
            "is {}; refusing to replace it with a disk image, even with --force",
            kind_of(ft)
        ),
    )
}

/// What a file that is not a regular file is, as people name it.
pub(crate) fn kind_of(ft: std::fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "a symlink"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_fifo() {
        "a fifo"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

fn apply(file: &File, plan: &Layout) -> io::Result<()> {
    file.set_len(plan.len)?;
    for (off, bytes) in &plan.writes {
        file.write_all_at(bytes, *off)?;
    }
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_skips_zero_ranges() {
        let mut l = Layout::new(4096);
        l.put(0, vec![0; 512]);
        l.put(512, vec![1, 2, 3]);
        l.put(1024, vec![0, 0, 4, 0, 5, 0]);
        assert_eq!(l.writes, vec![(512, vec![1, 2, 3]), (1026, vec![4, 0, 5])]);
        let v = l.to_vec();
        assert_eq!(&v[512..515], &[1, 2, 3]);
        assert_eq!(v.len(), 4096);
    }

    #[test]
    fn refuses_existing_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.img");
        std::fs::write(&p, b"keep me").unwrap();
        let err = write_new(&p, &Layout::new(10), false).unwrap_err();
        assert!(err.to_string().contains("x.img"), "{err}");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"keep me");
        write_new(&p, &Layout::new(10), true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), vec![0u8; 10]);
    }

    #[test]
    fn force_refuses_dirs_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("sub");
        std::fs::create_dir(&d).unwrap();
        let err = write_new(&d, &Layout::new(10), true).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        let target = dir.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_new(&link, &Layout::new(10), true).unwrap_err();
        assert!(err.to_string().contains("a symlink"), "{err}");
        assert!(write_new(&link, &Layout::new(10), false).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        let err = write_new(Path::new("/dev/null"), &Layout::new(10), true).unwrap_err();
        assert!(err.to_string().contains("/dev/null"), "{err}");
    }

    #[test]
    fn unique_bytes_differ() {
        assert_ne!(unique_bytes(b"a"), unique_bytes(b"a"));
    }
}
