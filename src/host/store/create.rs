//! Creating a machine: its user key, the guest's ssh host key (public half
//! in known_hosts, private half only in the userdata), its certificates,
//! the data disk carrying all of that, and a copy of the ISO. Everything is
//! built in a temporary directory renamed into place at the end, so a
//! failed creation leaves no half machine behind.

use crate::disk::image::ImageFormat;
use crate::disk::userdata::{Compat, Extension};
use crate::host::store::certs;
use crate::host::store::disk_image::{self, CreateSpec, DiskImageError};
use crate::host::store::{io_err, Config, Machine, MachineError, Store};
use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, LineEnding, PrivateKey};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error(transparent)]
    Certs(#[from] certs::CertError),
    #[error(transparent)]
    Disk(#[from] DiskImageError),
    #[error(transparent)]
    Keys(#[from] crate::host::store::keys::KeyError),
    #[error("generating an ssh key: {0}")]
    SshKey(#[from] ssh_key::Error),
}

/// What a new machine gets.
#[derive(Debug, Clone)]
pub struct NewMachine {
    pub name: String,
    pub iso: PathBuf,
    pub config: Config,
    /// Public keys authorized besides the machine's own (the user's usual
    /// key, so plain `ssh docker@…` works too).
    pub extra_keys: Vec<PathBuf>,
    /// The engine settings the disk carries in its userdata (the guest
    /// installs them at its first boot; QEMU boots also hand over the
    /// current ones every time).
    pub engine: crate::wire::engine::Engine,
}

fn ed25519(comment: &str) -> Result<PrivateKey, ssh_key::Error> {
    let mut k = PrivateKey::random(&mut OsRng, Algorithm::Ed25519)?;
    k.set_comment(comment);
    Ok(k)
}

fn write(path: &Path, data: &[u8], mode: u32) -> Result<(), MachineError> {
    Ok(crate::atomic::write(path, data, mode)?)
}

/// The userdata entry `.b2d/engine.json`, when there are settings.
pub fn engine_extension(e: &crate::wire::engine::Engine) -> Option<Extension> {
    (!e.is_empty()).then(|| Extension {
        name: crate::wire::engine::FILE_NAME.into(),
        mode: 0o600,
        data: e.to_json(),
    })
}

/// Copy `iso` to `dest` through a temporary file, so `dest` is never torn.
pub fn copy_iso(iso: &Path, dest: &Path) -> Result<(), MachineError> {
    let tmp = dest.with_extension("iso.tmp");
    std::fs::copy(iso, &tmp).map_err(io_err("copy the ISO from", iso))?;
    std::fs::rename(&tmp, dest).map_err(io_err("rename into place", dest))
}

pub fn create(store: &Store, new: &NewMachine) -> Result<Machine, CreateError> {
    crate::host::store::validate_name(&new.name)?;
    std::fs::create_dir_all(&store.root).map_err(io_err("create", &store.root))?;
    let tmp = store.root.join(format!(".{}.creating", new.name));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err("remove the stale", &tmp))?;
    }
    std::fs::create_dir(&tmp).map_err(io_err("create", &tmp))?;
    let result = populate(&tmp, new);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let m = result?;
    let dir = store.dir(&new.name);
    std::fs::rename(&tmp, &dir).map_err(io_err("rename into place", &dir))?;
    Ok(Machine { dir, ..m })
}

fn populate(dir: &Path, new: &NewMachine) -> Result<Machine, CreateError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io_err("chmod", dir))?;
    let m = Machine {
        name: new.name.clone(),
        dir: dir.to_path_buf(),
        config: new.config.clone(),
    };

    // The key `b2d ssh` logs in with.
    let user = ed25519(&format!("b2d {}", new.name))?;
    write(
        &m.ssh_key(),
        user.to_openssh(LineEnding::LF)?.as_bytes(),
        0o600,
    )?;
    let user_pub = user.public_key().to_openssh()? + "\n";
    write(
        &m.ssh_key().with_extension("pub"),
        user_pub.as_bytes(),
        0o644,
    )?;
    let mut authorized = user_pub.into_bytes();
    if !new.extra_keys.is_empty() {
        authorized.extend(crate::host::store::keys::authorized_keys(&new.extra_keys)?);
    }

    // The guest's host key: known before the first connection.
    let host = ed25519(&m.host_key_alias())?;
    let host_pub = host.public_key().to_openssh()?;
    let known = format!("{} {}\n", m.host_key_alias(), host_pub);
    write(&m.known_hosts(), known.as_bytes(), 0o644)?;

    let mut ext = vec![
        Extension {
            name: "ssh_host_ed25519_key".into(),
            mode: 0o600,
            data: host.to_openssh(LineEnding::LF)?.as_bytes().to_vec(),
        },
        Extension {
            name: "ssh_host_ed25519_key.pub".into(),
            mode: 0o644,
            data: (host_pub + "\n").into_bytes(),
        },
        Extension {
            name: "hostname".into(),
            mode: 0o644,
            data: format!("{}\n", new.name).into_bytes(),
        },
    ];
    ext.extend(certs::create(dir, &new.name)?);
    ext.extend(engine_extension(&new.engine));

    disk_image::create(&CreateSpec {
        path: m.disk(),
        size: new.config.disk_size,
        format: ImageFormat::Raw,
        authorized_keys: authorized,
        extensions: ext,
        compat: Compat::B2d,
        force: false,
    })?;
    copy_iso(&new.iso, &m.iso())?;
    m.save_config()?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(t: &Path, name: &str) -> NewMachine {
        let iso = t.join("b2d.iso");
        std::fs::write(&iso, b"iso bytes").unwrap();
        NewMachine {
            name: name.into(),
            iso,
            config: Config {
                cpus: 1,
                memory_mib: 1024,
                disk_size: 2 << 30,
                ssh_port: 1,
                docker_port: 2,
                mounts: None,
                mount_type: None,
                engine: Default::default(),
                network: None,
                swarm: None,
            },
            extra_keys: vec![],
            engine: Default::default(),
        }
    }

    #[test]
    fn a_new_machine_carries_its_keys_and_ca_in_the_userdata() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path().join("machines"));
        let m = create(&store, &new(t.path(), "dev")).unwrap();
        assert_eq!(m.dir, store.dir("dev"));
        assert_eq!(std::fs::read(m.iso()).unwrap(), b"iso bytes");
        let report = disk_image::inspect(&m.disk()).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["magic"], true);
        let entries = json["entries"].to_string();
        for e in [
            ".b2d/ssh_host_ed25519_key",
            ".b2d/ca.pem",
            ".b2d/ca-key.pem",
            ".b2d/hostname",
        ] {
            assert!(entries.contains(e), "{e} missing: {entries}");
        }
        let user_pub = std::fs::read_to_string(m.ssh_key().with_extension("pub")).unwrap();
        assert_eq!(
            json["authorized_keys"][0].as_str().unwrap(),
            user_pub.trim_end()
        );
        let known = std::fs::read_to_string(m.known_hosts()).unwrap();
        assert!(known.starts_with("b2d-dev ssh-ed25519 AAAA"), "{known}");
        // ssh-keygen accepts the private key and derives the same public key.
        let out = std::process::Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(m.ssh_key())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(user_pub.starts_with(String::from_utf8_lossy(&out.stdout).trim_end()));
        assert_eq!(store.open("dev").unwrap().config, m.config);
    }

    #[test]
    fn engine_settings_travel_in_the_userdata_only_when_there_are_some() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path().join("machines"));
        let plain = create(&store, &new(t.path(), "plain")).unwrap();
        let entries = |m: &Machine| {
            let json = serde_json::to_value(disk_image::inspect(&m.disk()).unwrap()).unwrap();
            json["entries"].to_string()
        };
        assert!(!entries(&plain).contains("engine.json"));
        let mut n = new(t.path(), "set");
        n.engine
            .daemon
            .insert("labels".into(), serde_json::json!(["a=b"]));
        let m = create(&store, &n).unwrap();
        assert!(entries(&m).contains(".b2d/engine.json"), "{}", entries(&m));
        let bytes = std::fs::read(m.disk()).unwrap();
        let archive = crate::disk::userdata::read(&bytes[..1 << 20]).unwrap();
        let e = archive.file(".b2d/engine.json").unwrap();
        assert_eq!(e.mode & 0o777, 0o600);
        assert_eq!(
            crate::wire::engine::Engine::parse(&e.data).unwrap(),
            n.engine
        );
    }

    #[test]
    fn a_failed_creation_leaves_nothing_behind() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path().join("machines"));
        let mut n = new(t.path(), "dev");
        n.iso = t.path().join("missing.iso");
        let e = create(&store, &n).unwrap_err().to_string();
        assert!(e.contains("missing.iso"), "{e}");
        assert_eq!(std::fs::read_dir(&store.root).unwrap().count(), 0);
        assert!(!store.exists("dev"));
    }
}
