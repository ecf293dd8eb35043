//! A mount point reached without following a link.
//!
//! A share nested in another (`/home/u` and `/home/u/src/x` both shared)
//! has its mount point inside the outer share, where a container that
//! writes the outer share may have left a symbolic link (`src -> /etc`):
//! `create_dir_all` and `mount` by path would follow it and mount over
//! the guest's own files. So the path is walked one component at a time
//! from a descriptor of the root, each opened `O_PATH | O_NOFOLLOW` from
//! the one before and checked to be a directory (a missing one is made
//! with `mkdirat` there), a link anywhere is refused, and the mount goes
//! onto the verified directory itself through `/proc/self/fd/N`, whatever
//! its path names by then.

use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum MountPointError {
    #[error("{} is a symbolic link (left in another share?): a share is never mounted through a link", path.display())]
    Link { path: PathBuf },
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{}: only plain names may follow the root", path.display())]
    NotPlain { path: PathBuf },
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A directory opened `O_PATH` at the end of a walk that followed no link.
#[derive(Debug)]
pub struct MountPoint {
    fd: OwnedFd,
    /// Where it was found (for messages).
    pub path: PathBuf,
    /// Its parent and name, when the walk made it (to remove it again).
    made: Option<(OwnedFd, PathBuf)>,
}

impl MountPoint {
    /// `/proc/self/fd/N`: the directory itself, for `mount(2)`, which
    /// follows this one link to the descriptor's own directory.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// Remove the directory again if the walk made it (an unused mount
    /// point is not left behind); best effort.
    pub fn remove_if_made(self) {
        if let Some((parent, name)) = self.made {
            let _ = unlinkat(&parent, &name, UnlinkatFlags::RemoveDir);
        }
    }
}

/// Open the directory `abs` (an absolute guest path) under `root`,
/// making what is missing (mode 0755), following no link on the way.
/// `root` itself is the agent's own and is opened as it is.
pub fn open_dir(root: &Path, abs: &str) -> Result<MountPoint, MountPointError> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |e: nix::errno::Errno| MountPointError::Io {
            what,
            path,
            source: e.into(),
        }
    };
    let walk = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut dir = open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io("open", root))?;
    let mut at = root.to_path_buf();
    let mut made = None;
    for c in Path::new(abs).components() {
        let name = match c {
            Component::RootDir => continue,
            Component::Normal(n) => n,
            _ => return Err(MountPointError::NotPlain { path: abs.into() }),
        };
        at.push(name);
        let mut fresh = false;
        let fd = match openat(&dir, name, walk, Mode::empty()) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => {
                match mkdirat(&dir, name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) => fresh = true,
                    Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(io("create", &at)(e)),
                }
                openat(&dir, name, walk, Mode::empty()).map_err(io("open", &at))?
            }
            Err(e) => return Err(io("open", &at)(e)),
        };
        let kind = SFlag::from_bits_truncate(fstat(&fd).map_err(io("stat", &at))?.st_mode);
        match kind & SFlag::S_IFMT {
            SFlag::S_IFDIR => {}
            SFlag::S_IFLNK => return Err(MountPointError::Link { path: at }),
            _ => return Err(MountPointError::NotADirectory { path: at }),
        }
        let parent = std::mem::replace(&mut dir, fd);
        made = fresh.then(|| (parent, PathBuf::from(name)));
    }
    Ok(MountPoint {
        fd: dir,
        path: at,
        made,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directories_are_made_and_the_fd_names_the_last() {
        let t = tempfile::tempdir().unwrap();
        let mp = open_dir(t.path(), "/home/u/src/x").unwrap();
        let real = t.path().join("home/u/src/x");
        assert!(real.is_dir());
        assert_eq!(mp.path, real);
        assert!(mp.proc_path().starts_with("/proc/self/fd/"));
        assert_eq!(
            std::fs::read_link(mp.proc_path()).unwrap(),
            real.canonicalize().unwrap()
        );
        mp.remove_if_made();
        assert!(!real.exists(), "the directory the walk made is removed");
        assert!(t.path().join("home/u/src").is_dir());
        // One that was there is kept.
        let mp = open_dir(t.path(), "/home/u/src").unwrap();
        mp.remove_if_made();
        assert!(t.path().join("home/u/src").is_dir());
    }

    #[test]
    fn a_link_anywhere_on_the_way_is_refused_and_nothing_is_made_beyond() {
        let t = tempfile::tempdir().unwrap();
        let etc = t.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::create_dir_all(t.path().join("home/u")).unwrap();
        std::os::unix::fs::symlink(&etc, t.path().join("home/u/src")).unwrap();
        let e = open_dir(t.path(), "/home/u/src/x").unwrap_err();
        assert!(matches!(e, MountPointError::Link { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "{} is a symbolic link (left in another share?): a share is never mounted through a link",
                t.path().join("home/u/src").display()
            )
        );
        assert!(!etc.join("x").exists(), "nothing made through the link");
        // The last component a link, relative or dangling: refused too.
        std::os::unix::fs::symlink("../../etc", t.path().join("home/u/y")).unwrap();
        std::os::unix::fs::symlink("/nowhere", t.path().join("home/u/z")).unwrap();
        for p in ["/home/u/y", "/home/u/z"] {
            let e = open_dir(t.path(), p).unwrap_err();
            assert!(matches!(e, MountPointError::Link { .. }), "{p}: {e}");
        }
        assert!(!t.path().join("nowhere").exists());
        // A file in the way, and `..`.
        std::fs::write(t.path().join("home/u/f"), "").unwrap();
        let e = open_dir(t.path(), "/home/u/f/x").unwrap_err();
        assert!(
            e.to_string().ends_with("home/u/f is not a directory"),
            "{e}"
        );
        let e = open_dir(t.path(), "/home/u/../../etc").unwrap_err();
        assert!(matches!(e, MountPointError::NotPlain { .. }), "{e}");
    }
}
