//! The machine store: `$XDG_DATA_HOME/b2d/machines/NAME/` holds a
//! machine's disk, ISO copy, keys, certificates, known_hosts, serial log,
//! QEMU pid and QMP socket, and `config.json`.
//!
//! Beside the store itself: [`config`] (what `config.json` keeps),
//! [`files`] (the name of every file in a machine's directory),
//! [`create`] (a new machine), [`disk_image`], [`iso`], [`certs`] and
//! [`keys`].

pub mod certs;
pub mod config;
pub mod create;
pub mod disk_image;
pub mod files;
pub mod iso;
pub mod keys;

use crate::errors::PathError;
use std::path::{Path, PathBuf};

pub use config::{Config, Role, SwarmMember};
pub use files::pid_file_in;

pub const DEFAULT_NAME: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error(
        "no machine named \"{name}\" (machines live in {store}); create it with `b2d up {name}`"
    )]
    Unknown { name: String, store: PathBuf },
    #[error("\"{}\" is not a valid machine name: use 1-63 letters, digits and '-', starting with a letter or digit", name.escape_debug())]
    BadName { name: String },
    #[error("neither XDG_DATA_HOME nor HOME is set: cannot place the machine store")]
    NoHome,
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("machine \"{name}\" is broken: {path} {problem}: repair that file, or remove the machine with `b2d rm -f {name}`")]
    Broken {
        name: String,
        path: PathBuf,
        #[source]
        problem: ConfigProblem,
    },
    #[error(
        "machine \"{name}\" is busy: another b2d command holds {path}: try again when it is done"
    )]
    Busy { name: String, path: PathBuf },
}

/// What is wrong with a machine's `config.json`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    #[error("cannot be read: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error("is not a regular file")]
    NotAFile,
    #[error("is over 1 MiB: not a machine config")]
    TooLarge,
    #[error("is not a b2d machine config: {0}")]
    Malformed(#[source] serde_json::Error),
}

/// The [`MachineError::Io`] for doing `what` on `path` (a verb phrase
/// read before the path: `create`, `rename into place`).
pub fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MachineError {
    let path = path.to_path_buf();
    move |source| MachineError::Io(PathError::wrap(what, path, source))
}

/// A machine name doubles as its hostname and directory name.
pub fn validate_name(name: &str) -> Result<(), MachineError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(MachineError::BadName { name: name.into() })
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    /// `.../b2d/machines`
    pub root: PathBuf,
}

impl Store {
    /// The store whose machines live in `root`.
    pub fn at(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// `$XDG_DATA_HOME/b2d/machines`, else `~/.local/share/b2d/machines`.
    /// A relative XDG_DATA_HOME is ignored, as the XDG spec says.
    pub fn from_env() -> Result<Store, MachineError> {
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|v| v.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .ok_or(MachineError::NoHome)?;
        Ok(Store {
            root: data.join("b2d/machines"),
        })
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Whether machine `name` is there: its directory holds a
    /// `config.json` of any kind, usable or not (see [`Store::open`]).
    pub fn exists(&self, name: &str) -> bool {
        std::fs::symlink_metadata(self.dir(name).join(CONFIG)).is_ok()
    }

    pub fn open(&self, name: &str) -> Result<Machine, MachineError> {
        validate_name(name)?;
        if !self.exists(name) {
            return Err(MachineError::Unknown {
                name: name.into(),
                store: self.root.clone(),
            });
        }
        let dir = self.dir(name);
        let path = dir.join(CONFIG);
        let config = read_config(&path).map_err(|problem| MachineError::Broken {
            name: name.into(),
            path,
            problem,
        })?;
        Ok(Machine {
            name: name.into(),
            dir,
            config,
        })
    }

    /// Hold the store's creation lock for the life of the returned file
    /// (`machines.lock` beside the store): machines made at once (`b2d
    /// swarm create`, two `b2d up`s) never take the same ports or network
    /// address. Waits for the holder.
    pub fn lock_creation(&self) -> Result<nix::fcntl::Flock<std::fs::File>, MachineError> {
        let path = self.root.with_extension("lock");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        let f = lock_file(&path)?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io_err("lock", &path)(e.into()))
    }

    /// Every machine, by name. One whose config cannot be used is there
    /// as [`Unusable`] (with why) instead of failing the whole list.
    pub fn list(&self) -> Result<Vec<Result<Machine, Unusable>>, MachineError> {
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_err("list", &self.root)(e)),
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| validate_name(n).is_ok() && self.exists(n))
            .collect();
        names.sort();
        Ok(names
            .into_iter()
            .map(|name| {
                self.open(&name).map_err(|error| Unusable {
                    dir: self.dir(&name),
                    name,
                    error,
                })
            })
            .collect())
    }
}

/// A machine of the store that cannot be opened, and why: listed as
/// broken, removable with `b2d rm -f`, nothing else.
#[derive(Debug)]
pub struct Unusable {
    pub name: String,
    pub dir: PathBuf,
    pub error: MachineError,
}

pub use files::CONFIG;

/// The file a lock is taken on, made if missing (its content is kept).
fn lock_file(path: &Path) -> Result<std::fs::File, MachineError> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err("open", path))
}

/// Read and parse a `config.json`. Anything but a regular file is
/// refused without reading it (opening a fifo does not wait for a writer),
/// and so is one over 1 MiB.
fn read_config(path: &Path) -> Result<Config, ConfigProblem> {
    use crate::small_file::{self, SmallFileError};
    let text = small_file::read(path, small_file::JSON_LIMIT).map_err(|e| match e {
        SmallFileError::Io(e) => ConfigProblem::Unreadable(e.source),
        SmallFileError::NotAFile { .. } => ConfigProblem::NotAFile,
        SmallFileError::TooLarge { .. } => ConfigProblem::TooLarge,
    })?;
    serde_json::from_slice(&text).map_err(ConfigProblem::Malformed)
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub name: String,
    pub dir: PathBuf,
    pub config: Config,
}

impl Machine {
    /// The store the machine lives in.
    pub fn store(&self) -> Store {
        Store {
            root: self.dir.parent().map(Path::to_path_buf).unwrap_or_default(),
        }
    }
    /// The name the guest's host key is filed under in known_hosts.
    pub fn host_key_alias(&self) -> String {
        format!("b2d-{}", self.name)
    }

    pub fn save_config(&self) -> Result<(), MachineError> {
        let path = self.dir.join(CONFIG);
        let mut text = serde_json::to_vec_pretty(&self.config)
            .map_err(|e| PathError::new("encode", &path, e.into()))?;
        text.push(b'\n');
        Ok(crate::atomic::write(&path, &text, 0o644)?)
    }

    /// Hold the machine's lock for the life of the returned file, so two
    /// `b2d` commands never start, stop or remove one machine at once.
    pub fn lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>, MachineError> {
        lock_dir(&self.name, &self.dir)
    }
}

/// [`Machine::lock`] of machine `name` in `dir`, config or not.
pub fn lock_dir(name: &str, dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, MachineError> {
    let path = files::lock_in(dir);
    let f = lock_file(&path)?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        MachineError::Busy {
            name: name.into(),
            path,
        }
    })
}

/// A machine "dev" in `dir` (2 CPUs, 2048 MiB, 20 GiB, ports 40022 and
/// 40376) for unit tests; nothing is written.
#[cfg(test)]
pub(crate) fn sample(dir: impl Into<PathBuf>) -> Machine {
    Machine {
        name: "dev".into(),
        dir: dir.into(),
        config: Config {
            cpus: 2,
            memory_mib: 2048,
            disk_size: 20 << 30,
            ssh_port: 40022,
            docker_port: 40376,
            mounts: None,
            mount_type: None,
            engine: Default::default(),
            network: None,
            swarm: None,
        },
    }
}

/// [`sample`] saved in `store` as machine "dev": its directory and
/// config.json.
#[cfg(test)]
pub(crate) fn saved_sample(store: &Store) -> Machine {
    let m = sample(store.dir("dev"));
    std::fs::create_dir_all(&m.dir).unwrap();
    m.save_config().unwrap();
    m
}

/// A machine in `dir` whose "QEMU" is a sleeping process naming the
/// pid file in its arguments, as `qemu::running_pid` wants.
#[cfg(test)]
pub(crate) fn sample_running(dir: &Path) -> (Machine, std::process::Child) {
    let m = sample(dir);
    let child = std::process::Command::new("sh")
        // `; true`: sh would exec a lone command, losing the pid file path.
        .args(["-c", "sleep 30; true", &m.pid_file().display().to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::fs::write(m.pid_file(), child.id().to_string()).unwrap();
    // Right after exec /proc/PID/cmdline can still be empty.
    let t0 = std::time::Instant::now();
    while crate::host::vm::running_pid(&m).is_none() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "the fake QEMU never showed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    (m, child)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_hostnames() {
        for ok in ["default", "dev-2", "a", "A1"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "-x", "x-", "a.b", "a/b", "..", "a b", &"x".repeat(64)] {
            let e = validate_name(bad).unwrap_err().to_string();
            assert!(e.contains("not a valid machine name"), "{e}");
        }
    }

    #[test]
    fn unknown_machine_says_how_to_create_it() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::at(t.path().join("machines"));
        let e = s.open("dev").unwrap_err().to_string();
        assert!(e.contains("no machine named \"dev\""), "{e}");
        assert!(e.contains("b2d up dev"), "{e}");
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn config_round_trips_and_a_bad_one_names_its_file() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::at(t.path().to_path_buf());
        std::fs::create_dir(s.dir("dev")).unwrap();
        let m = sample(s.dir("dev"));
        m.save_config().unwrap();
        assert_eq!(s.open("dev").unwrap().config, m.config);
        assert_eq!(s.list().unwrap().len(), 1);
        assert!(s.list().unwrap()[0].is_ok());
        std::fs::write(s.dir("dev").join(CONFIG), "{").unwrap();
        let e = s.open("dev").unwrap_err().to_string();
        assert!(e.contains("config.json is not a b2d machine config"), "{e}");
        assert!(e.contains("`b2d rm -f dev`"), "{e}");
        let listed = s.list().unwrap();
        let broken = listed[0].as_ref().unwrap_err();
        assert_eq!((broken.name.as_str(), &broken.dir), ("dev", &s.dir("dev")));
        assert_eq!(broken.error.to_string(), e);
        // A fifo in its place is refused at once, not waited on.
        std::fs::remove_file(s.dir("dev").join(CONFIG)).unwrap();
        nix::unistd::mkfifo(
            &s.dir("dev").join(CONFIG),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let e = s.open("dev").unwrap_err().to_string();
        assert!(e.contains("config.json is not a regular file"), "{e}");
        // So is a link to a device, and a file too large to be a config
        // is not read past its first MiB.
        std::fs::remove_file(s.dir("dev").join(CONFIG)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", s.dir("dev").join(CONFIG)).unwrap();
        let e = s.open("dev").unwrap_err().to_string();
        assert!(e.contains("config.json is not a regular file"), "{e}");
        std::fs::remove_file(s.dir("dev").join(CONFIG)).unwrap();
        std::fs::write(s.dir("dev").join(CONFIG), vec![b' '; (1 << 20) + 1]).unwrap();
        let e = s.open("dev").unwrap_err().to_string();
        assert!(e.contains("config.json is over 1 MiB"), "{e}");
    }

    #[test]
    fn a_config_that_cannot_be_written_names_its_path_once() {
        let t = tempfile::tempdir().unwrap();
        let m = sample(t.path().join("gone"));
        let e = m.save_config().unwrap_err();
        let line = crate::error_chain(&e);
        let path = m.dir.join(CONFIG).display().to_string();
        assert_eq!(line.matches(&path).count(), 1, "{line}");
        assert!(
            line.starts_with(&format!("create temp for {path}: ")),
            "{line}"
        );
    }

    #[test]
    fn a_second_lock_is_refused_while_the_first_is_held() {
        let t = tempfile::tempdir().unwrap();
        let m = sample(t.path());
        let held = m.lock().unwrap();
        let e = m.lock().unwrap_err().to_string();
        assert!(e.contains("is busy"), "{e}");
        drop(held);
        m.lock().unwrap();
    }
}
