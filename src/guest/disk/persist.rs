//! Mounting the data filesystem, populating a fresh one, and the
//! persistence bind mounts (`/var/lib/docker`, `/var/lib/containerd`,
//! `/var/lib/boot2docker`, `/home/docker`).

use super::DiskError;
use crate::disk::userdata::{self, Archive};
use crate::errors::{PathError, WithPath};
use crate::sys::{MsFlags, Sys};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The guest's `docker` user and its primary group (`staff`), as boot2docker.
pub const DOCKER_UID: u32 = 1000;
pub const DOCKER_GID: u32 = 50;

/// Directories bind-mounted from the data filesystem, relative to both roots.
pub const PERSISTED: &[&str] = &[
    "var/lib/docker",
    "var/lib/containerd",
    STATE_DIR,
    "home/docker",
];

/// b2d's own state (`/var/lib/boot2docker`), relative to both roots.
pub const STATE_DIR: &str = "var/lib/boot2docker";
/// Its mode, and its `log/`'s: it holds keys, certificates and logs.
const STATE_MODE: u32 = 0o700;

/// `target/mnt/<partition name>`, e.g. `/mnt/sda1`.
pub fn mountpoint(target: &Path, part: &Path) -> PathBuf {
    target
        .join("mnt")
        .join(part.file_name().unwrap_or_default())
}

fn mkdirs(p: &Path) -> Result<(), DiskError> {
    Ok(std::fs::create_dir_all(p).with_path("create directory", p)?)
}

pub fn mount_data(sys: &dyn Sys, dev: &Path, mnt: &Path) -> Result<(), DiskError> {
    mkdirs(mnt)?;
    sys.mount(
        Some(&dev.to_string_lossy()),
        mnt,
        Some("ext4"),
        MsFlags::empty(),
        None,
    )
    .with_path("mount ext4 from", dev)?;
    Ok(())
}

/// Write `path` atomically (see [`crate::atomic`]).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), DiskError> {
    Ok(crate::atomic::write(path, data, mode)?)
}

/// Lay out a fresh data filesystem mounted at `mnt`: persisted
/// directories, `userdata.tar`, the user's keys, `.b2d/` root-only.
pub fn populate(
    sys: &dyn Sys,
    mnt: &Path,
    archive: &[u8],
    parsed: Option<&Archive>,
) -> Result<(), DiskError> {
    for d in PERSISTED {
        mkdirs(&mnt.join(d))?;
    }
    let b2d_dir = mnt.join(STATE_DIR);
    secure_state_dir(&b2d_dir)?;
    let home = mnt.join("home/docker");
    std::os::unix::fs::chown(&home, Some(DOCKER_UID), Some(DOCKER_GID))
        .with_path("chown", &home)?;
    if let Some(a) = parsed {
        write_atomic(&b2d_dir.join("userdata.tar"), archive, 0o600)?;
        userdata::install(a, &home, DOCKER_UID, DOCKER_GID).map_err(|source| {
            DiskError::Install {
                what: "userdata",
                dir: home.clone(),
                source: Box::new(source),
            }
        })?;
        let priv_dir = b2d_dir.join("b2d");
        mkdirs(&priv_dir)?;
        std::fs::set_permissions(&priv_dir, std::fs::Permissions::from_mode(0o700))
            .with_path("chmod", &priv_dir)?;
        userdata::install_b2d(a, &priv_dir).map_err(|source| DiskError::Install {
            what: ".b2d",
            dir: priv_dir.clone(),
            source: Box::new(source),
        })?;
    }
    let f = std::fs::File::open(mnt).with_path("open", mnt)?;
    nix::unistd::syncfs(&f).with_path("syncfs", mnt)?;
    sys.sync();
    Ok(())
}

/// Make b2d's state directory `dir` and its `log/` root-only (0700),
/// creating them if needed: on a fresh disk, on a disk an older b2d made
/// them 0755 on, and in RAM.
pub fn secure_state_dir(dir: &Path) -> Result<(), PathError> {
    for d in [dir.to_path_buf(), dir.join("log")] {
        std::fs::create_dir_all(&d).with_path("create directory", &d)?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(STATE_MODE))
            .with_path("chmod", &d)?;
    }
    Ok(())
}

/// Bind the persisted directories from the data filesystem at `mnt` onto
/// `target`; b2d's state is made root-only first.
pub fn bind(sys: &dyn Sys, mnt: &Path, target: &Path) -> Result<Vec<PathBuf>, DiskError> {
    let mut done = Vec::new();
    for d in PERSISTED {
        let (src, dst) = (mnt.join(d), target.join(d));
        mkdirs(&src)?;
        if *d == STATE_DIR {
            secure_state_dir(&src)?;
        }
        mkdirs(&dst)?;
        sys.mount(
            Some(&src.to_string_lossy()),
            &dst,
            None,
            MsFlags::MS_BIND,
            None,
        )
        .with_path("bind mount onto", &dst)?;
        done.push(dst);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    #[test]
    fn binds_every_persisted_dir_in_order() {
        let t = tempfile::tempdir().unwrap();
        let mnt = t.path().join("mnt/sda1");
        let sys = FakeSys::new();
        bind(&sys, &mnt, t.path()).unwrap();
        let calls = sys.calls();
        assert_eq!(calls.len(), 4);
        for (c, d) in calls.iter().zip(PERSISTED) {
            assert_eq!(
                c,
                &format!(
                    "mount {} {} - bind -",
                    mnt.join(d).display(),
                    t.path().join(d).display()
                )
            );
        }
        assert!(mnt.join("home/docker").is_dir());
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_fresh_data_filesystem_keeps_b2d_state_root_only() {
        let t = tempfile::tempdir().unwrap();
        let mnt = t.path().join("mnt/sda1");
        std::fs::create_dir_all(&mnt).unwrap();
        populate(&FakeSys::new(), &mnt, &[], None).unwrap();
        let state = mnt.join("var/lib/boot2docker");
        assert_eq!(mode(&state), 0o700, "{}", state.display());
        assert_eq!(mode(&state.join("log")), 0o700);
        assert_eq!(
            mode(&mnt.join("var/lib/docker")),
            0o755,
            "only b2d's own state"
        );
    }

    #[test]
    fn binding_an_existing_disk_makes_its_b2d_state_root_only_again() {
        let t = tempfile::tempdir().unwrap();
        let mnt = t.path().join("mnt/sda1");
        let state = mnt.join("var/lib/boot2docker");
        std::fs::create_dir_all(state.join("log")).unwrap();
        for d in [&state, &state.join("log")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        bind(&FakeSys::new(), &mnt, t.path()).unwrap();
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join("log")), 0o700);
    }

    #[test]
    fn mountpoint_is_named_for_the_partition() {
        assert_eq!(
            mountpoint(Path::new("/"), Path::new("/dev/sda1")),
            PathBuf::from("/mnt/sda1")
        );
    }
}
