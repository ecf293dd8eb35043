//! Host folders at the same path (before dockerd starts, so
//! `docker run -v "$PWD":/src` finds them): each share of the host's
//! per-boot config ([`crate::wire::guest_config`]) is a virtiofs or
//! virtio-9p export, mounted at its own absolute path. QEMU runs as the user who ran
//! `b2d up`, so what containers write lands on the host owned by that
//! user. A share nested in another is mounted only onto a directory
//! reached without following a link ([`super::mount_point`]): a link a
//! container left in the outer share cannot send it over `/etc`.

use super::mount_point::{self, MountPointError};
use crate::sys::{MsFlags, Sys};
use crate::wire::guest_config::{
    share_problem, GuestConfig, Share, ShareFs, FW_CFG_NAME, MAX_SIZE,
};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a share was not mounted; each names the share.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error("share: {0}; not mounted")]
    Refused(String),
    #[error("share {share}: {source}; not mounted")]
    MountPoint {
        share: String,
        #[source]
        source: MountPointError,
    },
    #[error("share {share}: mount of {fstype} tag {tag} failed: {source}")]
    Mount {
        share: String,
        fstype: &'static str,
        tag: String,
        #[source]
        source: std::io::Error,
    },
}

/// 9p options: the Linux 9p2000.L client over virtio; `cache=mmap` keeps
/// mmap working (containers' databases) with no stale-cache surprises.
pub const NINEP_OPTS: &str = "trans=virtio,version=9p2000.L,msize=262144,cache=mmap";

/// The config QEMU put in fw_cfg, if any (none: not a b2d-made QEMU
/// machine, or no qemu_fw_cfg driver).
pub fn read_config(sys_root: &Path) -> Option<GuestConfig> {
    let raw = sys_root
        .join("firmware/qemu_fw_cfg/by_name")
        .join(FW_CFG_NAME)
        .join("raw");
    let f = std::fs::File::open(&raw).ok()?;
    let mut text = String::new();
    if let Err(e) = f.take(MAX_SIZE).read_to_string(&mut text) {
        log::error!("config: cannot read {}: {e}", raw.display());
        return None;
    }
    match serde_json::from_str(&text) {
        Ok(c) => Some(c),
        Err(e) => {
            log::error!("config: {} is not b2d's config: {e}", raw.display());
            None
        }
    }
}

/// The modules a 9p share needs, when `cfg` has one (virtiofs comes with
/// its PCI device's coldplug).
pub fn modules_needed(cfg: &GuestConfig) -> Option<&'static [&'static str]> {
    cfg.shares
        .iter()
        .any(|s| s.fs == ShareFs::NineP)
        .then_some(&["9p", "9pnet_virtio"])
}

/// Mount every share under `root`; returns the shares that were mounted.
pub fn mount_all(sys: &dyn Sys, root: &Path, cfg: &GuestConfig) -> Vec<Share> {
    let mut done = Vec::new();
    for s in &cfg.shares {
        match mount_one(sys, root, s) {
            Ok(_) => {
                let how = if s.readonly {
                    "read-only"
                } else {
                    "read-write"
                };
                log::info!(
                    "share: host {} mounted {how} at the same path ({})",
                    s.path,
                    s.fs.name()
                );
                done.push(s.clone());
            }
            Err(e) => log::error!("{e}"),
        }
    }
    done
}

/// Where share `s` is mounted under `root`.
pub fn target(root: &Path, s: &Share) -> PathBuf {
    super::mounts::under(root, &s.path)
}

/// Mount one share at its path under `root`, onto the directory found
/// there without following a link; the error names the share.
pub fn mount_one(sys: &dyn Sys, root: &Path, s: &Share) -> Result<PathBuf, ShareError> {
    if let Some(why) = share_problem(s) {
        return Err(ShareError::Refused(why));
    }
    let at = mount_point::open_dir(root, &s.path).map_err(|source| ShareError::MountPoint {
        share: s.path.clone(),
        source,
    })?;
    let flags = if s.readonly {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    let fstype = s.fs.name();
    let data = match s.fs {
        ShareFs::NineP => Some(NINEP_OPTS),
        // virtiofsd decides caching; the kernel needs no options.
        ShareFs::Virtiofs => None,
    };
    sys.mount(Some(&s.tag), &at.proc_path(), Some(fstype), flags, data)
        .map_err(|source| ShareError::Mount {
            share: s.path.clone(),
            fstype,
            tag: s.tag.clone(),
            source,
        })?;
    Ok(at.path)
}

/// VirtualBox shares, mounted as boot2docker did: the share named `Users`
/// (a macOS host's /Users) at `/Users`, `c/Users` (a Windows host's) at
/// `/c/Users`, owned by docker:staff. Only where the VirtualBox guest
/// driver found its device; a share the VM does not have fails quietly.
pub const VBOX_SHARES: &[(&str, &str)] = &[("Users", "/Users"), ("c/Users", "/c/Users")];

/// vboxsf options: the docker user (1000) and group staff (50).
/// (The kernel's own vboxsf names the charset `nls`; `iocharset` was the
/// out-of-tree driver's and makes this one refuse the mount.)
pub const VBOXSF_OPTS: &str = "uid=1000,gid=50,nls=utf8";

/// Whether this is a VirtualBox VM with its guest driver loaded.
pub fn in_virtualbox(sys_root: &Path) -> bool {
    // The driver's misc device exists only once it found VirtualBox's PCI
    // device; the module itself is loaded on every boot.
    sys_root.join("class/misc/vboxguest").exists()
}

/// Mount the VirtualBox shares there are; returns the mount points.
pub fn mount_vbox(sys: &dyn Sys, root: &Path, sys_root: &Path) -> Vec<PathBuf> {
    if !in_virtualbox(sys_root) {
        return Vec::new();
    }
    let mut done = Vec::new();
    for (share, path) in VBOX_SHARES {
        let at = match mount_point::open_dir(root, path) {
            Ok(at) => at,
            Err(e) => {
                log::error!("share: VirtualBox share {share}: {e}; not mounted");
                continue;
            }
        };
        match sys.mount(
            Some(share),
            &at.proc_path(),
            Some("vboxsf"),
            MsFlags::empty(),
            Some(VBOXSF_OPTS),
        ) {
            Ok(()) => {
                log::info!("share: VirtualBox share {share} mounted at {path}");
                done.push(at.path);
            }
            Err(e) => {
                // No such share on this VM: leave no empty mount point.
                at.remove_if_made();
                log::info!("share: no VirtualBox share {share} ({e})");
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{Call, FakeSys};

    #[test]
    fn shares_mount_at_their_own_path_and_bad_ones_are_skipped() {
        let t = tempfile::tempdir().unwrap();
        let cfg = GuestConfig {
            shares: vec![
                Share {
                    tag: "b2d0".into(),
                    path: "/home/alice".into(),
                    readonly: false,
                    fs: ShareFs::Virtiofs,
                },
                Share {
                    tag: "b2d1".into(),
                    path: "/etc".into(),
                    readonly: false,
                    fs: ShareFs::NineP,
                },
                Share {
                    tag: "b2d2".into(),
                    path: "/srv/data".into(),
                    readonly: true,
                    fs: ShareFs::NineP,
                },
            ],
            engine: None,
            network: None,
        };
        let sys = FakeSys::new();
        let done = mount_all(&sys, t.path(), &cfg);
        let at: Vec<PathBuf> = done.iter().map(|s| target(t.path(), s)).collect();
        assert_eq!(
            at,
            vec![t.path().join("home/alice"), t.path().join("srv/data")]
        );
        assert!(t.path().join("home/alice").is_dir());
        let mounts: Vec<_> = sys
            .typed_calls()
            .into_iter()
            .map(|c| match c {
                Call::Mount {
                    source,
                    target,
                    fstype,
                    flags,
                    data,
                } => {
                    assert!(target.starts_with("/proc/self/fd"), "{}", target.display());
                    (source, fstype, flags, data)
                }
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(
            mounts,
            [
                (
                    Some("b2d0".into()),
                    Some("virtiofs".into()),
                    MsFlags::empty(),
                    None
                ),
                (
                    Some("b2d2".into()),
                    Some("9p".into()),
                    MsFlags::MS_RDONLY,
                    Some(NINEP_OPTS.into())
                ),
            ],
            "/etc is refused"
        );
        let real = |p: &str| t.path().join(p).canonicalize().unwrap();
        assert_eq!(
            sys.mounted_through_fds(),
            [real("home/alice"), real("srv/data")]
        );
    }

    #[test]
    fn a_nested_share_is_not_mounted_through_a_link_in_the_outer_one() {
        let t = tempfile::tempdir().unwrap();
        let share = |tag: &str, path: &str| Share {
            tag: tag.into(),
            path: path.into(),
            readonly: false,
            fs: ShareFs::Virtiofs,
        };
        // What a container wrote into the outer share /home/u at an
        // earlier boot: src -> the guest's /etc.
        let etc = t.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(t.path().join("home/u")).unwrap();
        std::os::unix::fs::symlink(&etc, t.path().join("home/u/src")).unwrap();
        let cfg = GuestConfig {
            shares: vec![share("b2d0", "/home/u"), share("b2d1", "/home/u/src/x")],
            engine: None,
            network: None,
        };
        let sys = FakeSys::new();
        let done = mount_all(&sys, t.path(), &cfg);
        assert_eq!(done.len(), 1, "only the outer share");
        assert_eq!(
            sys.mounted_through_fds(),
            [t.path().join("home/u").canonicalize().unwrap()]
        );
        assert!(!etc.join("x").exists(), "nothing made in /etc");
        let e = mount_one(&sys, t.path(), &cfg.shares[1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "share /home/u/src/x: {} is a symbolic link (left in another share?): a share is never mounted through a link; not mounted",
                t.path().join("home/u/src").display()
            )
        );
        crate::assert_readable(&e.to_string());
        assert_eq!(sys.calls().len(), 1);
    }

    #[test]
    fn only_a_9p_share_asks_for_the_9p_modules() {
        let share = |fs| Share {
            tag: "b2d0".into(),
            path: "/home/alice".into(),
            readonly: false,
            fs,
        };
        let cfg = |shares| GuestConfig {
            shares,
            engine: None,
            network: None,
        };
        assert_eq!(modules_needed(&cfg(vec![])), None);
        assert_eq!(modules_needed(&cfg(vec![share(ShareFs::Virtiofs)])), None);
        assert_eq!(
            modules_needed(&cfg(vec![share(ShareFs::Virtiofs), share(ShareFs::NineP)])),
            Some(&["9p", "9pnet_virtio"][..])
        );
    }

    #[test]
    fn virtualbox_shares_as_boot2docker_mounted_them() {
        let t = tempfile::tempdir().unwrap();
        let sys_root = t.path().join("sys");
        let sys = FakeSys::new();
        assert!(mount_vbox(&sys, t.path(), &sys_root).is_empty());
        assert!(sys.calls().is_empty(), "not VirtualBox: nothing tried");

        std::fs::create_dir_all(sys_root.join("module/vboxguest")).unwrap();
        assert!(
            mount_vbox(&sys, t.path(), &sys_root).is_empty(),
            "the module alone, without VirtualBox's device: nothing tried"
        );
        assert!(sys.calls().is_empty());
        std::fs::create_dir_all(sys_root.join("class/misc/vboxguest")).unwrap();
        let sys = FakeSys::new();
        sys.fail_on("mount c/Users", std::io::ErrorKind::NotFound);
        let done = mount_vbox(&sys, t.path(), &sys_root);
        assert_eq!(done, vec![t.path().join("Users")]);
        let Call::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } = &sys.typed_calls()[0]
        else {
            panic!("{:?}", sys.calls());
        };
        assert_eq!(
            (source, fstype, *flags, data),
            (
                &Some("Users".into()),
                &Some("vboxsf".into()),
                MsFlags::empty(),
                &Some(VBOXSF_OPTS.into())
            )
        );
        assert!(target.starts_with("/proc/self/fd"));
        assert_eq!(
            sys.mounted_through_fds()[0],
            t.path().join("Users").canonicalize().unwrap()
        );
        assert_eq!(sys.calls().len(), 2);
        assert!(
            !t.path().join("c/Users").exists(),
            "no empty mount point left"
        );
    }

    #[test]
    fn the_config_is_read_from_fw_cfg() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(read_config(t.path()), None);
        let dir = t
            .path()
            .join("firmware/qemu_fw_cfg/by_name")
            .join(FW_CFG_NAME);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("raw"),
            r#"{"shares":[{"tag":"b2d0","path":"/home/a","readonly":true}]}"#,
        )
        .unwrap();
        let c = read_config(t.path()).unwrap();
        assert_eq!(c.shares[0].path, "/home/a");
        assert!(c.shares[0].readonly);
        std::fs::write(dir.join("raw"), "nonsense").unwrap();
        assert_eq!(read_config(t.path()), None);
    }
}
