//! Putting a validated archive on the guest's filesystem.
//!
//! Everything happens relative to a directory file descriptor: each path
//! component is opened with `O_NOFOLLOW | O_DIRECTORY` (and created with
//! `mkdirat` when missing), so a symlink or a non-directory anywhere below
//! the target stops the install with an error instead of being followed.
//! Files are written to a temporary name in their final directory, owned,
//! chmod-ed and fsync-ed, then renamed over the final name, and the
//! directory is fsync-ed. An existing file (or symlink) at the final name is
//! replaced, never written through; an existing directory there is an
//! error. The target directory itself must exist and must not be a symlink;
//! its ancestors are trusted.

use super::{is_b2d_path, Archive, EntryKind, UserdataError, B2D_PREFIX};
use crate::disk::magic::MAGIC;
use crate::errors::{PathError, WithPath};
use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::{self, FileStat, Mode, SFlag};
use nix::unistd::{self, Gid, Uid};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of files written by [`install_b2d`] (plus owner-execute when the
/// archive marks the file executable for its owner).
pub const B2D_FILE_MODE: u32 = 0o600;
/// Mode of directories created by [`install_b2d`].
pub const B2D_DIR_MODE: u32 = 0o700;
/// Mode of directories created because an entry needs them as a parent.
const IMPLICIT_DIR_MODE: u32 = 0o700;

/// What an install wrote, as paths relative to the target directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallReport {
    /// Directory entries applied (created, or chown-ed and chmod-ed).
    pub dirs: Vec<String>,
    /// Files written.
    pub files: Vec<String>,
    /// Archive paths this call deliberately left alone.
    pub skipped: Vec<String>,
}

/// Install the archive's entries for the user under `target` (the guest's
/// `/home/docker`), owned by `uid`:`gid` with the archive's masked modes.
///
/// The magic entry and everything under `.b2d/` are skipped (see
/// [`install_b2d`]). Parent directories missing from the archive are
/// created with mode 0700.
pub fn install(
    archive: &Archive,
    target: &Path,
    uid: u32,
    gid: u32,
) -> Result<InstallReport, UserdataError> {
    let t = Target::open(target, uid, gid)?;
    let mut report = InstallReport::default();
    for e in &archive.entries {
        let is_magic = e.kind == EntryKind::File && e.path.as_bytes() == MAGIC;
        if is_magic || is_b2d_path(&e.path) {
            report.skipped.push(e.path.clone());
            continue;
        }
        match e.kind {
            EntryKind::Dir => {
                t.dir(&e.path, e.mode)?;
                report.dirs.push(e.path.clone());
            }
            EntryKind::File => {
                t.file(&e.path, e.mode, &e.data)?;
                report.files.push(e.path.clone());
            }
        }
    }
    Ok(report)
}

/// Install the `.b2d/` entries into `dir` (the guest's
/// `/var/lib/boot2docker`), without the `.b2d/` prefix, owned by root:
/// files [`B2D_FILE_MODE`] (0700 when the archive gives the owner execute
/// permission), directories [`B2D_DIR_MODE`]. Other entries are skipped.
pub fn install_b2d(archive: &Archive, dir: &Path) -> Result<InstallReport, UserdataError> {
    let t = Target::open(dir, 0, 0)?;
    let mut report = InstallReport::default();
    for e in &archive.entries {
        let rel = match e.path.strip_prefix(B2D_PREFIX) {
            Some(rest) if rest.len() > 1 && rest.starts_with('/') => &rest[1..],
            _ => {
                report.skipped.push(e.path.clone());
                continue;
            }
        };
        match e.kind {
            EntryKind::Dir => {
                t.dir(rel, B2D_DIR_MODE)?;
                report.dirs.push(rel.to_owned());
            }
            EntryKind::File => {
                t.file(rel, B2D_FILE_MODE | (e.mode & 0o100), &e.data)?;
                report.files.push(rel.to_owned());
            }
        }
    }
    Ok(report)
}

/// An opened target directory and the owner of everything written in it.
struct Target {
    fd: OwnedFd,
    path: PathBuf,
    uid: Uid,
    gid: Gid,
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

impl Target {
    fn open(path: &Path, uid: u32, gid: u32) -> Result<Self, UserdataError> {
        // With O_NOFOLLOW | O_DIRECTORY a symlink fails with ELOOP or
        // ENOTDIR depending on the kernel: lstat tells them apart.
        let fd = fcntl::open(path, DIR_FLAGS, Mode::empty()).map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => match std::fs::symlink_metadata(path) {
                Ok(md) if md.file_type().is_symlink() => unsafe_path(
                    path,
                    "the target directory is a symlink; refusing to follow it",
                ),
                _ => unsafe_path(path, "the target is not a directory"),
            },
            e => PathError::new("open the target directory", path, e.into()).into(),
        })?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
        })
    }

    /// Make sure the directory `rel` exists (creating what is missing), then
    /// give it our owner and `mode`.
    fn dir(&self, rel: &str, mode: u32) -> Result<(), UserdataError> {
        let fd = self.walk(rel)?;
        self.own(&fd, rel, mode)
    }

    /// Atomically (re)place the file `rel` with `data`.
    fn file(&self, rel: &str, mode: u32, data: &[u8]) -> Result<(), UserdataError> {
        let (parent_rel, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let parent = self.walk(parent_rel)?;
        let shown = self.path.join(rel);
        if let Some(st) = lstat_at(&parent, name).with_path("lstat", &shown)? {
            if file_type(&st) == SFlag::S_IFDIR {
                return Err(unsafe_path(&shown, "exists and is a directory"));
            }
        }
        let tmp = temp_name();
        let fd = fcntl::openat(
            &parent,
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .with_path("create a temporary file", &shown)?;
        let written = self.fill(fd, rel, mode, data).and_then(|()| {
            fcntl::renameat(&parent, tmp.as_str(), &parent, name)
                .with_path("rename the temporary file into place", &shown)
                .map_err(UserdataError::from)
        });
        if let Err(e) = written {
            let _ = unistd::unlinkat(&parent, tmp.as_str(), unistd::UnlinkatFlags::NoRemoveDir);
            return Err(e);
        }
        Ok(unistd::fsync(&parent).with_path("fsync its directory", &shown)?)
    }

    /// Write, own, chmod and fsync a freshly created temporary file.
    fn fill(&self, fd: OwnedFd, rel: &str, mode: u32, data: &[u8]) -> Result<(), UserdataError> {
        let shown = self.path.join(rel);
        let mut f = std::fs::File::from(fd);
        f.write_all(data).with_path("write", &shown)?;
        self.own(&f, rel, mode)?;
        Ok(f.sync_all().with_path("fsync", &shown)?)
    }

    fn own<Fd: std::os::fd::AsFd>(
        &self,
        fd: Fd,
        rel: &str,
        mode: u32,
    ) -> Result<(), UserdataError> {
        let shown = || self.path.join(rel);
        unistd::fchown(&fd, Some(self.uid), Some(self.gid)).with_path("chown", shown())?;
        stat::fchmod(&fd, Mode::from_bits_truncate(mode & 0o777)).with_path("chmod", shown())?;
        Ok(())
    }

    /// Open the directory `rel` below the target one component at a time,
    /// creating missing components (owned by us, mode 0700) and refusing
    /// symlinks and non-directories.
    fn walk(&self, rel: &str) -> Result<OwnedFd, UserdataError> {
        let mut cur = self
            .fd
            .try_clone()
            .with_path("dup the target directory", &self.path)?;
        let mut done = self.path.clone();
        for comp in rel.split('/').filter(|c| !c.is_empty()) {
            done.push(comp);
            let next = match fcntl::openat(&cur, comp, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match stat::mkdirat(&cur, comp, Mode::from_bits_truncate(IMPLICIT_DIR_MODE)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => {
                            return Err(
                                PathError::new("create the directory", &done, e.into()).into()
                            )
                        }
                    }
                    let fd = fcntl::openat(&cur, comp, DIR_FLAGS, Mode::empty())
                        .map_err(|e| refusal(&cur, comp, &done, e))?;
                    self.own(&fd, &rel_of(&done, &self.path), IMPLICIT_DIR_MODE)?;
                    fd
                }
                Err(e) => return Err(refusal(&cur, comp, &done, e)),
            };
            cur = next;
        }
        Ok(cur)
    }
}

/// Explain why `comp` could not be opened as a directory.
fn refusal(parent: &OwnedFd, comp: &str, shown: &Path, e: Errno) -> UserdataError {
    if matches!(e, Errno::ELOOP | Errno::ENOTDIR) {
        if let Ok(Some(st)) = lstat_at(parent, comp) {
            return match file_type(&st) {
                SFlag::S_IFLNK => unsafe_path(shown, "is a symlink; refusing to follow it"),
                SFlag::S_IFDIR => PathError::new("open the directory", shown, e.into()).into(),
                _ => unsafe_path(shown, "exists and is not a directory"),
            };
        }
    }
    PathError::new("open the directory", shown, e.into()).into()
}

fn lstat_at(parent: &OwnedFd, name: &str) -> Result<Option<FileStat>, Errno> {
    match stat::fstatat(parent, name, fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn rel_of(full: &Path, base: &Path) -> String {
    full.strip_prefix(base)
        .unwrap_or(full)
        .to_string_lossy()
        .into_owned()
}

/// A name for a temporary file that no entry of ours uses at the same time.
fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".b2d-tmp.{}.{n}", std::process::id())
}

fn unsafe_path(path: &Path, problem: &'static str) -> UserdataError {
    UserdataError::Unsafe {
        path: path.to_path_buf(),
        problem,
    }
}
