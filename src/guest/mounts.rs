//! The early mount table (step 1 of the boot) and device-node fallbacks.

use crate::errors::{os_error, PathError, WithPath};
use crate::sys::{MsFlags, Sys};
use std::io;
use std::path::{Path, PathBuf};

/// One early mount. `target` is absolute inside the guest and is joined
/// onto the configured root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub source: &'static str,
    pub target: &'static str,
    pub fstype: &'static str,
    pub flags: MsFlags,
    pub data: Option<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(transparent)]
    Mkdir(#[from] PathError),
    #[error("cannot mount {fstype} on {path}: {source}")]
    Mount {
        fstype: String,
        path: PathBuf,
        source: io::Error,
    },
}

/// The early mounts, in order: parents before children.
pub fn early_table() -> Vec<MountSpec> {
    let nsd = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let nsde = nsd | MsFlags::MS_NOEXEC;
    vec![
        MountSpec {
            source: "proc",
            target: "/proc",
            fstype: "proc",
            flags: nsde,
            data: None,
        },
        MountSpec {
            source: "sysfs",
            target: "/sys",
            fstype: "sysfs",
            flags: nsde,
            data: None,
        },
        MountSpec {
            source: "devtmpfs",
            target: "/dev",
            fstype: "devtmpfs",
            flags: MsFlags::MS_NOSUID,
            data: Some("mode=0755"),
        },
        MountSpec {
            source: "devpts",
            target: "/dev/pts",
            fstype: "devpts",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            data: Some("gid=5,mode=0620,ptmxmode=0666"),
        },
        MountSpec {
            source: "shm",
            target: "/dev/shm",
            fstype: "tmpfs",
            flags: nsd,
            data: Some("mode=1777"),
        },
        MountSpec {
            source: "tmpfs",
            target: "/run",
            fstype: "tmpfs",
            flags: nsd,
            data: Some("mode=0755"),
        },
        MountSpec {
            source: "tmpfs",
            target: "/tmp",
            fstype: "tmpfs",
            flags: nsd,
            data: Some("mode=1777"),
        },
        MountSpec {
            source: "cgroup2",
            target: "/sys/fs/cgroup",
            fstype: "cgroup2",
            flags: nsde,
            data: None,
        },
    ]
}

/// `root` + an absolute guest path.
pub fn under(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// Create each mount point and mount the table in order. A target that is
/// already mounted (EBUSY) is fine: the kernel or an initramfs may have
/// done it. Any other failure stops the boot with the path in the error.
pub fn mount_early(sys: &dyn Sys, root: &Path, table: &[MountSpec]) -> Result<(), MountError> {
    for m in table {
        let path = under(root, m.target);
        std::fs::create_dir_all(&path).with_path("cannot create mount point", &path)?;
        match sys.mount(Some(m.source), &path, Some(m.fstype), m.flags, m.data) {
            Ok(()) => log::debug!("mounted {} on {}", m.fstype, path.display()),
            Err(e) if os_error(&e) == Some(libc::EBUSY) || is_busy(&e) => {
                log::debug!("{} already mounted on {}", m.fstype, path.display())
            }
            Err(source) => {
                return Err(MountError::Mount {
                    fstype: m.fstype.to_string(),
                    path,
                    source,
                })
            }
        }
    }
    Ok(())
}

fn is_busy(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ResourceBusy
}

/// Make the root mount shared (recursively) so mounts made by dockerd and
/// containers propagate as Docker expects.
pub fn make_root_shared(sys: &dyn Sys, root: &Path) {
    let flags = MsFlags::MS_REC | MsFlags::MS_SHARED;
    if let Err(e) = sys.mount(None, root, None, flags, None) {
        log::warn!("cannot make {} shared: {e}", root.display());
    }
}

/// A device node devtmpfs should have made; created if missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: &'static str,
    pub mode: u32,
    pub major: u64,
    pub minor: u64,
}

/// The nodes PID 1 and its children cannot live without.
pub const FALLBACK_NODES: &[NodeSpec] = &[
    NodeSpec {
        name: "console",
        mode: 0o600,
        major: 5,
        minor: 1,
    },
    NodeSpec {
        name: "null",
        mode: 0o666,
        major: 1,
        minor: 3,
    },
    NodeSpec {
        name: "zero",
        mode: 0o666,
        major: 1,
        minor: 5,
    },
    NodeSpec {
        name: "urandom",
        mode: 0o666,
        major: 1,
        minor: 9,
    },
    NodeSpec {
        name: "tty",
        mode: 0o666,
        major: 5,
        minor: 0,
    },
];

/// Symlinks devtmpfs never creates but shells and Docker expect.
pub const DEV_LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// mknod the fallback nodes that are missing under `dev_root`, and add the
/// /dev/fd-style symlinks. Failures are logged: a missing /dev/zero is not
/// worth a failed boot.
pub fn ensure_dev_nodes(sys: &dyn Sys, dev_root: &Path) {
    for n in FALLBACK_NODES {
        let path = dev_root.join(n.name);
        if path.symlink_metadata().is_ok() {
            continue;
        }
        match sys.mknod(&path, false, n.mode, n.major, n.minor) {
            Ok(()) => log::info!("created missing {}", path.display()),
            Err(e) => log::warn!("cannot create {}: {e}", path.display()),
        }
    }
    for (name, target) in DEV_LINKS {
        let path = dev_root.join(name);
        if path.symlink_metadata().is_err() {
            if let Err(e) = std::os::unix::fs::symlink(target, &path) {
                log::warn!("cannot link {} -> {target}: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    #[test]
    fn mounts_in_table_order_and_creates_mount_points() {
        let d = tempfile::tempdir().unwrap();
        let sys = FakeSys::new();
        mount_early(&sys, d.path(), &early_table()).unwrap();
        let calls = sys.calls();
        let root = d.path().display().to_string();
        let stripped: Vec<String> = calls.iter().map(|c| c.replace(&root, "")).collect();
        assert_eq!(stripped[0], "mount proc /proc proc nosuid|nodev|noexec -");
        assert_eq!(stripped[2], "mount devtmpfs /dev devtmpfs nosuid mode=0755");
        assert_eq!(
            stripped[7],
            "mount cgroup2 /sys/fs/cgroup cgroup2 nosuid|nodev|noexec -"
        );
        assert_eq!(stripped.len(), 8);
        assert!(d.path().join("sys/fs/cgroup").is_dir());
        assert!(d.path().join("dev/shm").is_dir());
    }

    #[test]
    fn busy_is_tolerated_other_errors_name_the_path() {
        let d = tempfile::tempdir().unwrap();
        let sys = FakeSys::new();
        sys.fail_on("mount proc", io::ErrorKind::ResourceBusy);
        sys.fail_on("mount sysfs", io::ErrorKind::PermissionDenied);
        let e = mount_early(&sys, d.path(), &early_table()).unwrap_err();
        assert!(e.to_string().contains("sysfs"), "{e}");
        assert!(e
            .to_string()
            .contains(&d.path().join("sys").display().to_string()));
        assert_eq!(sys.calls().len(), 2);
    }

    #[test]
    fn fallback_nodes_only_when_missing() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("null"), b"").unwrap();
        let sys = FakeSys::new();
        ensure_dev_nodes(&sys, d.path());
        let calls = sys.calls();
        let dev = d.path().display();
        assert!(calls.contains(&format!("mknod {dev}/console c 600 5:1")));
        assert!(!calls.iter().any(|c| c.contains("/null ")));
        assert_eq!(
            std::fs::read_link(d.path().join("fd")).unwrap(),
            Path::new("/proc/self/fd")
        );
    }
}
