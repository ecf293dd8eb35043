//! ssh host keys (boot step 5). The host companion may ship the guest's
//! ed25519 host key in userdata (`.b2d/ssh_host_ed25519_key{,.pub}`, which
//! the disk part installs into `/var/lib/boot2docker/b2d/`); then `b2d ssh`
//! can check the key strictly from the first connection. Otherwise missing
//! keys (ed25519 and ecdsa: fast, no entropy stall) are generated once with
//! ssh-keygen and persisted in `/var/lib/boot2docker/ssh/`, where sshd
//! reads them (`-h`).

use crate::sys::Sys;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Key types sshd is given, in `-h` order.
pub const KEY_TYPES: &[&str] = &["ed25519", "ecdsa"];

#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error("host keys: {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("host keys: ssh-keygen for {path} failed: {msg}")]
    Keygen { path: PathBuf, msg: String },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> HostKeyError + 'a {
    move |source| HostKeyError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

pub fn key_file(ssh_dir: &Path, ty: &str) -> PathBuf {
    ssh_dir.join(format!("ssh_host_{ty}_key"))
}

/// Write `data` to `path` with `mode`, atomically.
fn install_file(path: &Path, data: &[u8], mode: u32) -> Result<(), HostKeyError> {
    crate::atomic::write_atomic(path, data, mode).map_err(io_err("write", path))
}

/// Ensure host keys in `ssh_dir`, preferring the pair from `b2d_dir`.
/// Returns the private key paths for sshd's `-h` flags.
pub fn ensure(sys: &dyn Sys, b2d_dir: &Path, ssh_dir: &Path) -> Result<Vec<PathBuf>, HostKeyError> {
    std::fs::create_dir_all(ssh_dir).map_err(io_err("create", ssh_dir))?;
    std::fs::set_permissions(ssh_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io_err("chmod", ssh_dir))?;

    let shipped = key_file(b2d_dir, "ed25519");
    let shipped_pub = shipped.with_extension("pub");
    if shipped.is_file() && shipped_pub.is_file() {
        let key = std::fs::read(&shipped).map_err(io_err("read", &shipped))?;
        let public = std::fs::read(&shipped_pub).map_err(io_err("read", &shipped_pub))?;
        let dst = key_file(ssh_dir, "ed25519");
        if std::fs::read(&dst).ok().as_deref() != Some(&key[..]) {
            install_file(&dst, &key, 0o600)?;
            install_file(&dst.with_extension("pub"), &public, 0o644)?;
            log::info!("ssh: host key from userdata installed as {}", dst.display());
        }
    } else if shipped.exists() {
        log::warn!(
            "ssh: {} has no .pub next to it; ignoring it",
            shipped.display()
        );
    }

    let mut keys = Vec::new();
    for ty in KEY_TYPES {
        let path = key_file(ssh_dir, ty);
        if !path.exists() {
            let p = path.display().to_string();
            let out = sys
                .run(
                    "ssh-keygen",
                    &["-q", "-t", ty, "-N", "", "-C", "", "-f", &p],
                )
                .map_err(|e| HostKeyError::Keygen {
                    path: path.clone(),
                    msg: e.to_string(),
                })?;
            if !out.success() {
                return Err(HostKeyError::Keygen {
                    path,
                    msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
            log::info!("ssh: generated {ty} host key {p}");
        }
        keys.push(path);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    #[test]
    fn shipped_key_is_installed_and_only_missing_types_generated() {
        let d = tempfile::tempdir().unwrap();
        let b2d = d.path().join("b2d");
        let ssh = d.path().join("ssh");
        std::fs::create_dir_all(&b2d).unwrap();
        std::fs::write(key_file(&b2d, "ed25519"), "PRIVATE").unwrap();
        std::fs::write(b2d.join("ssh_host_ed25519_key.pub"), "PUBLIC").unwrap();
        let sys = FakeSys::new();
        let keys = ensure(&sys, &b2d, &ssh).unwrap();
        assert_eq!(
            keys,
            vec![key_file(&ssh, "ed25519"), key_file(&ssh, "ecdsa")]
        );
        let k = key_file(&ssh, "ed25519");
        assert_eq!(std::fs::read_to_string(&k).unwrap(), "PRIVATE");
        assert_eq!(
            std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_to_string(ssh.join("ssh_host_ed25519_key.pub")).unwrap(),
            "PUBLIC"
        );
        assert_eq!(
            std::fs::metadata(&ssh).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            sys.calls(),
            vec![format!(
                "run ssh-keygen -q -t ecdsa -N  -C  -f {}",
                key_file(&ssh, "ecdsa").display()
            )]
        );
    }

    #[test]
    fn without_userdata_both_are_generated_once() {
        let d = tempfile::tempdir().unwrap();
        let ssh = d.path().join("ssh");
        let sys = FakeSys::new();
        ensure(&sys, &d.path().join("b2d"), &ssh).unwrap();
        assert_eq!(sys.calls().len(), 2);
        std::fs::write(key_file(&ssh, "ed25519"), "x").unwrap();
        std::fs::write(key_file(&ssh, "ecdsa"), "x").unwrap();
        let sys = FakeSys::new();
        ensure(&sys, &d.path().join("b2d"), &ssh).unwrap();
        assert!(sys.calls().is_empty());
    }

    #[test]
    fn real_ssh_keygen_makes_a_key() {
        if std::process::Command::new("ssh-keygen")
            .arg("-?")
            .output()
            .is_err()
        {
            return; // not installed here
        }
        let d = tempfile::tempdir().unwrap();
        let ssh = d.path().join("ssh");
        let keys = ensure(&crate::sys::RealSys, &d.path().join("b2d"), &ssh).unwrap();
        for k in keys {
            assert!(k.is_file());
            assert!(k.with_extension("pub").is_file());
        }
    }
}
