//! What `b2d up` changes on an existing machine: a new ISO, CPUs, memory,
//! a larger disk and engine settings for a stopped one; for a running
//! one, the options it has to leave for the next boot.

use super::{UpError, UpOptions};
use crate::disk::size::{gib, Human};
use crate::errors::WithPath;
use crate::host::engine;
use crate::host::forward::fixed::Moved;
use crate::host::network::{self, Attachment};
use crate::host::store::create;
use crate::host::store::iso;
use crate::host::store::{Machine, Store};
use std::path::{Path, PathBuf};

/// Something `up` did on the way that the user should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The machine boots a new ISO from now on.
    NewIso(PathBuf),
    DiskGrown {
        from: u64,
        to: u64,
    },
    /// A remembered port was taken by another program.
    Port(Moved),
    /// An ERROR line of the guest agent on the console.
    Guest(String),
    /// The host agent (port forwarding) had to be started.
    AgentStarted,
    /// The host agent could not be started: no port forwarding.
    NoAgent(String),
    /// The docker context could not be written.
    Context(String),
    /// Something about the shared folders (left out, exposed, 9p).
    Shares(crate::host::shares::ShareNote),
    /// The saved state of a suspend could not be used: a cold boot.
    NotResumed(String),
    /// A machine on its network could not be told who is there now.
    Peers(String),
    /// A suspended machine was resumed and shut down to take new settings.
    ResumedToRestart {
        wanted: Vec<String>,
        /// Why it had to be killed, if it did not power off.
        killed: Option<String>,
    },
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Note::NewIso(p) => write!(f, "now booting {}", p.display()),
            Note::DiskGrown { from, to } => write!(
                f,
                "disk grown from {} to {}; the guest grows its filesystem at this boot",
                gib(*from),
                gib(*to)
            ),
            Note::Port(m) => m.fmt(f),
            Note::Guest(e) => write!(f, "guest: {}", crate::util::printable(e)),
            Note::AgentStarted => f.write_str("the host agent was not running; started it again"),
            Note::NoAgent(e) => write!(
                f,
                "cannot start the host agent ({e}): published ports are not forwarded"
            ),
            Note::Context(e) => write!(f, "{e}; `b2d env` still works"),
            Note::Peers(e) => f.write_str(e),
            Note::NotResumed(why) => write!(
                f,
                "not resumed: {why}; booting cold from the disk, as after a power cut"
            ),
            Note::ResumedToRestart { wanted, killed } => {
                write!(
                    f,
                    "resumed with its old settings and shut down, to boot cold with {}",
                    wanted.join(", ")
                )?;
                match killed {
                    None => Ok(()),
                    Some(why) => write!(f, " (killed: {why})"),
                }
            }
            Note::Shares(n) => n.fmt(f),
        }
    }
}

/// Options given to `up` of a running machine that it cannot apply now.
pub(super) fn ignored(m: &Machine, o: &UpOptions) -> Result<Vec<String>, UpError> {
    let mut ignored = Vec::new();
    if let Some(p) = &o.iso {
        if iso_changed(m, p)? {
            ignored.push(format!("--iso {}", p.display()));
        }
    }
    let c = &m.config;
    let changed = [
        (
            "--cpus",
            o.cpus.filter(|v| *v != c.cpus).map(|v| v.to_string()),
        ),
        (
            "--memory",
            o.memory_mib
                .filter(|v| *v != c.memory_mib)
                .map(|v| format!("{v}M")),
        ),
        (
            "--disk-size",
            o.disk_size
                .filter(|v| *v != c.disk_size)
                .map(|v| Human(v).to_string()),
        ),
        (
            "--ssh-port",
            o.ssh_port
                .filter(|v| *v != c.ssh_port)
                .map(|v| v.to_string()),
        ),
        (
            "--docker-port",
            o.docker_port
                .filter(|v| *v != c.docker_port)
                .map(|v| v.to_string()),
        ),
        (
            "--mount",
            (!o.mounts.is_empty()).then(|| o.mounts.join(" --mount ")),
        ),
        (
            "--mount-type",
            o.mount_type
                .clone()
                .filter(|_| o.mount_type().ok().flatten() != Some(m.config.mount_type)),
        ),
        (
            "--network",
            o.network.clone().filter(|n| {
                network::parse_arg(n).ok().flatten()
                    != m.config.network.as_ref().map(|a| a.name.clone())
            }),
        ),
    ];
    ignored.extend(
        changed
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k} {v}"))),
    );
    let engine = engine::apply(&m.config.engine, &o.engine)?;
    ignored.extend(engine::changed(&m.config.engine, &engine));
    Ok(ignored)
}

/// Whether ISO `p` (checked to be one) differs from the machine's copy.
fn iso_changed(m: &Machine, p: &Path) -> Result<bool, UpError> {
    iso::check(p)?;
    Ok(!iso::same_contents(p, &m.iso()).unwrap_or(false))
}

/// New ISO, CPUs, memory, a larger disk or engine settings for a stopped
/// machine.
pub(super) fn apply(m: &mut Machine, o: &UpOptions) -> Result<Vec<Note>, UpError> {
    // Checked before anything changes: a refused setting leaves the
    // machine as it was.
    let engine = engine::apply(&m.config.engine, &o.engine)?;
    engine::for_guest_here(&engine)?;
    let mut notes = Vec::new();
    m.config.engine = engine;
    if let Some(p) = &o.iso {
        if iso_changed(m, p)? {
            create::copy_iso(p, &m.iso()).map_err(create::CreateError::from)?;
            notes.push(Note::NewIso(p.clone()));
        }
    }
    if let Some(c) = o.cpus {
        m.config.cpus = c;
    }
    if let Some(mem) = o.memory_mib {
        m.config.memory_mib = mem;
    }
    if let Some(size) = o.disk_size {
        notes.extend(grow_disk(m, size)?);
    }
    if !o.mounts.is_empty() {
        let hidden = crate::host::shares::plan::hidden_for(m);
        let chosen = crate::host::shares::from_args(&o.mounts, o.home.as_deref(), &hidden)?;
        m.config.mounts = Some(chosen.mounts);
        notes.extend(chosen.notes.into_iter().map(Note::Shares));
    }
    if let Some(t) = o.mount_type()? {
        m.config.mount_type = t;
    }
    Ok(notes)
}

/// `--network` of a stopped machine: join, move to or leave a network.
/// A new address is taken under the store's creation lock and saved at
/// once. Returns the network it left, whose running machines are to be
/// told.
pub(super) fn network(
    store: &Store,
    m: &mut Machine,
    o: &UpOptions,
) -> Result<Option<String>, UpError> {
    let Some(arg) = &o.network else {
        return Ok(None);
    };
    let want = network::parse_arg(arg)?;
    let had = m.config.network.as_ref().map(|a| a.name.clone());
    if want == had {
        return Ok(None);
    }
    let _creating = store.lock_creation()?;
    m.config.network = match want {
        Some(net) => Some(Attachment {
            address: network::allocate(store, &m.name, &net)?,
            name: net,
        }),
        None => None,
    };
    m.save_config()?;
    Ok(had)
}

/// Grow the raw disk image to `size` (sparse); the guest grows partition
/// and filesystem at boot. Shrinking would cut the filesystem: refused.
fn grow_disk(m: &mut Machine, size: u64) -> Result<Option<Note>, UpError> {
    let disk = m.disk();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&disk)
        .with_path("open to resize", &disk)?;
    let now = f.metadata().with_path("read the size of", &disk)?.len();
    if size < now {
        return Err(UpError::Shrink {
            name: m.name.clone(),
            path: disk,
            now: gib(now),
            size: gib(size),
        });
    }
    m.config.disk_size = size;
    if size == now {
        return Ok(None);
    }
    f.set_len(size).with_path("grow", &disk)?;
    f.sync_all().with_path("fsync", &disk)?;
    Ok(Some(Note::DiskGrown {
        from: now,
        to: size,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(dir: &Path, disk: u64) -> Machine {
        let mut m = crate::host::store::sample(dir);
        m.config.disk_size = disk;
        std::fs::File::create(m.disk())
            .unwrap()
            .set_len(disk)
            .unwrap();
        m
    }

    #[test]
    fn a_disk_grows_and_never_shrinks() {
        let t = tempfile::tempdir().unwrap();
        let mut m = machine(t.path(), 2 << 30);
        assert!(grow_disk(&mut m, 2 << 30).unwrap().is_none());
        let note = grow_disk(&mut m, 3 << 30).unwrap().unwrap().to_string();
        assert!(note.contains("from 2 GiB to 3 GiB"), "{note}");
        assert_eq!(std::fs::metadata(m.disk()).unwrap().len(), 3 << 30);
        assert_eq!(m.config.disk_size, 3 << 30);
        let e = grow_disk(&mut m, 1 << 30).unwrap_err().to_string();
        assert!(
            e.contains("disk.img: the disk is 3 GiB and cannot shrink to 1 GiB"),
            "{e}"
        );
        assert!(
            e.contains("`b2d rm dev` and `b2d up dev --disk-size …`"),
            "{e}"
        );
        assert_eq!(std::fs::metadata(m.disk()).unwrap().len(), 3 << 30);
    }

    #[test]
    fn options_a_running_machine_cannot_take_are_named() {
        let t = tempfile::tempdir().unwrap();
        let m = machine(t.path(), 1 << 20);
        // The CPU count is unchanged (2), so not named.
        let o = UpOptions {
            cpus: Some(2),
            memory_mib: Some(4096),
            disk_size: Some(2 << 20),
            mount_type: Some("9p".into()),
            ..Default::default()
        };
        assert_eq!(
            ignored(&m, &o).unwrap(),
            vec![
                "--memory 4096M".to_string(),
                "--disk-size 2M".to_string(),
                "--mount-type 9p".to_string()
            ]
        );
        let same = UpOptions {
            mount_type: Some("auto".into()),
            ..Default::default()
        };
        assert!(
            ignored(&m, &same).unwrap().is_empty(),
            "auto is what it has"
        );
    }

    #[test]
    fn notes_read_as_sentences() {
        let n = Note::NewIso("/isos/b2d.iso".into());
        assert_eq!(n.to_string(), "now booting /isos/b2d.iso");
        assert_eq!(Note::Guest("x".into()).to_string(), "guest: x");
        assert_eq!(
            Note::Guest("\u{1b}[2Jx".into()).to_string(),
            "guest: \\x1b[2Jx"
        );
    }
}
