//! `b2d up`: create the machine if it does not exist, apply changed
//! settings to a stopped one (a new ISO, CPUs, memory, a larger disk),
//! boot it and wait for the guest's ready line. A running machine is left
//! as it is.

use crate::host::accel;
use crate::host::console::{self, Boot};
use crate::host::create::{self, NewMachine};
use crate::host::iso;
use crate::host::machine::{Config, Machine, Store};
use crate::host::ports;
use crate::host::progress::Progress;
use crate::host::qemu;
use crate::host::ssh_keys;
use crate::wire::ready::Ready;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_CPUS: u32 = 2;
pub const DEFAULT_MEMORY_MIB: u32 = 2048;
pub const DEFAULT_DISK: u64 = 20 << 30;
pub const MIN_MEMORY_MIB: u32 = 512;

#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub name: String,
    pub iso: Option<PathBuf>,
    pub cpus: Option<u32>,
    pub memory_mib: Option<u32>,
    pub disk_size: Option<u64>,
    pub ssh_port: Option<u16>,
    pub docker_port: Option<u16>,
    pub timeout: Duration,
}

impl UpOptions {
    fn ports(&self) -> ports::Wanted {
        ports::Wanted {
            ssh: self.ssh_port,
            docker: self.docker_port,
        }
    }
}

/// What `up` did.
#[derive(Debug)]
pub enum Outcome {
    AlreadyRunning {
        ignored: Vec<String>,
    },
    Booted {
        ready: Ready,
        secs: f64,
        accel: accel::Accel,
        notes: Vec<String>,
    },
}

/// `--memory`: a bare number is MiB (as QEMU's `-m`), else a size.
pub fn parse_memory(s: &str) -> Result<u32, String> {
    let mib = if s.trim().bytes().all(|b| b.is_ascii_digit()) && !s.trim().is_empty() {
        s.trim().parse::<u64>().map_err(|e| format!("{s:?}: {e}"))?
    } else {
        crate::disk::size::parse_size(s).map_err(|e| e.to_string())? >> 20
    };
    if mib < MIN_MEMORY_MIB as u64 || mib > u32::MAX as u64 {
        return Err(format!(
            "{s:?}: memory must be at least {MIN_MEMORY_MIB} MiB (e.g. 2G or 2048)"
        ));
    }
    Ok(mib as u32)
}

pub fn up(store: &Store, o: &UpOptions) -> Result<(Machine, Outcome)> {
    crate::host::machine::validate_name(&o.name)?;
    let qemu = qemu::find()?;
    let created = !store.exists(&o.name);
    if created {
        let iso = iso::resolve(o.iso.as_deref())?;
        let new = new_machine(store, o, iso)?;
        eprintln!(
            "Creating machine {:?} ({} CPUs, {} MiB memory, {} disk) in {}",
            o.name,
            new.config.cpus,
            new.config.memory_mib,
            crate::disk::size::gib(new.config.disk_size),
            store.dir(&o.name).display()
        );
        create::create(store, &new)?;
    }
    let mut m = store.open(&o.name)?;
    let _lock = m.lock()?;
    if let Some(pid) = qemu::running_pid(&m) {
        let ignored = ignored_options(&m, o)?;
        let log = std::fs::read_to_string(m.serial_log()).unwrap_or_default();
        if !matches!(console::read(&log), Boot::Ready(_)) {
            // Still booting (an earlier `up` gave up waiting): wait again.
            let mut progress = Progress::new(format!("Waiting for {} (QEMU pid {pid})", m.name));
            wait_ready(&m, o.timeout, &mut progress)?;
        }
        return Ok((m, Outcome::AlreadyRunning { ignored }));
    }
    // A machine made just now already has what the options asked for.
    let mut notes = if created {
        Vec::new()
    } else {
        apply_changes(&mut m, o)?
    };
    notes.extend(
        ports::for_boot(store, &mut m, o.ports())?
            .iter()
            .map(ToString::to_string),
    );
    m.save_config()?;
    rotate_log(&m);
    if accel::will_probe() {
        eprintln!("Checking whether KVM works here (a short test boot, once per host boot)…");
    }
    let accel = accel::choose(&m.iso());
    let mut progress = Progress::new(format!("Booting {} ({})", m.name, accel.name()));
    progress.update(Some("starting QEMU"));
    qemu::start(&m, &qemu, accel)?;
    let ready = wait_ready(&m, o.timeout, &mut progress)?;
    let secs = progress.elapsed().as_secs_f64();
    progress.finish();
    let docker_addr = format!("127.0.0.1:{}", m.config.docker_port);
    if !crate::util::tcp_open(&docker_addr, Duration::from_secs(3)) {
        bail!(
            "machine {:?} is up but nothing answers on 127.0.0.1:{} (see {})",
            m.name,
            m.config.docker_port,
            m.qemu_log().display()
        );
    }
    let log = std::fs::read_to_string(m.serial_log()).unwrap_or_default();
    notes.extend(
        console::errors(&log)
            .into_iter()
            .map(|e| format!("guest: {e}")),
    );
    Ok((
        m,
        Outcome::Booted {
            ready,
            secs,
            accel,
            notes,
        },
    ))
}

fn new_machine(store: &Store, o: &UpOptions, iso: PathBuf) -> Result<NewMachine> {
    let (ssh_port, docker_port) = ports::for_new(store, &o.name, o.ports())?;
    let config = Config {
        cpus: o.cpus.unwrap_or(DEFAULT_CPUS),
        memory_mib: o.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB),
        disk_size: o.disk_size.unwrap_or(DEFAULT_DISK),
        ssh_port,
        docker_port,
    };
    // The user's own key too, so plain `ssh -p PORT docker@127.0.0.1` works.
    let extra_keys = std::env::var_os("HOME")
        .and_then(|h| ssh_keys::default_key(std::path::Path::new(&h)).ok())
        .into_iter()
        .collect();
    Ok(NewMachine {
        name: o.name.clone(),
        iso,
        config,
        extra_keys,
    })
}

/// Options given to `up` of a running machine that it cannot apply now.
fn ignored_options(m: &Machine, o: &UpOptions) -> Result<Vec<String>> {
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
                .map(|v| crate::disk::size::Human(v).to_string()),
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
    ];
    ignored.extend(
        changed
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k} {v}"))),
    );
    Ok(ignored)
}

/// Whether ISO `p` (checked to be one) differs from the machine's copy.
fn iso_changed(m: &Machine, p: &std::path::Path) -> Result<bool> {
    iso::check(p)?;
    Ok(!iso::same_contents(p, &m.iso()).unwrap_or(false))
}

/// New ISO, CPUs, memory or a larger disk for a stopped machine.
fn apply_changes(m: &mut Machine, o: &UpOptions) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    if let Some(p) = &o.iso {
        if iso_changed(m, p)? {
            create::copy_iso(p, &m.iso())?;
            notes.push(format!("now booting {}", p.display()));
        }
    }
    if let Some(c) = o.cpus {
        m.config.cpus = c;
    }
    if let Some(mem) = o.memory_mib {
        m.config.memory_mib = mem;
    }
    if let Some(size) = o.disk_size {
        if let Some(note) = grow_disk(m, size)? {
            notes.push(note);
        }
    }
    Ok(notes)
}

/// Grow the raw disk image to `size` (sparse); the guest grows partition
/// and filesystem at boot. Shrinking would cut the filesystem: refused.
fn grow_disk(m: &mut Machine, size: u64) -> Result<Option<String>> {
    let disk = m.disk();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&disk)
        .with_context(|| format!("{}: opening the disk to resize it", disk.display()))?;
    let now = f
        .metadata()
        .with_context(|| format!("{}: reading its size", disk.display()))?
        .len();
    if size < now {
        bail!(
            "{}: the disk is {} and cannot shrink to {} (that would cut its filesystem); to start over, `b2d rm {}` and `b2d up {} --disk-size …`",
            disk.display(),
            crate::disk::size::gib(now),
            crate::disk::size::gib(size),
            m.name,
            m.name
        );
    }
    m.config.disk_size = size;
    if size == now {
        return Ok(None);
    }
    f.set_len(size)
        .with_context(|| format!("{}: growing to {size} bytes", disk.display()))?;
    f.sync_all()
        .with_context(|| format!("{}: syncing", disk.display()))?;
    Ok(Some(format!(
        "disk grown from {} to {}; the guest grows its filesystem at this boot",
        crate::disk::size::gib(now),
        crate::disk::size::gib(size)
    )))
}

/// Keep the previous boot's console as `serial.log.1`.
fn rotate_log(m: &Machine) {
    let log = m.serial_log();
    if log.exists() {
        let _ = std::fs::rename(&log, log.with_extension("log.1"));
    }
}

fn wait_ready(m: &Machine, timeout: Duration, progress: &mut Progress) -> Result<Ready> {
    loop {
        let log = String::from_utf8_lossy(&std::fs::read(m.serial_log()).unwrap_or_default())
            .into_owned();
        match console::read(&log) {
            Boot::Ready(r) if r.docker => return Ok(r),
            Boot::Ready(_) => {
                progress.finish();
                bail!(
                    "machine {:?} booted but its Docker engine did not answer; it is left running: see `b2d logs {}`, then `b2d stop {}`\n{}",
                    m.name,
                    m.name,
                    m.name,
                    console::tail(&log, 15)
                );
            }
            Boot::Failed(why) => {
                progress.finish();
                qemu::stop_now(m);
                bail!(
                    "machine {:?} failed to boot: {why}\nlast console lines ({}):\n{}",
                    m.name,
                    m.serial_log().display(),
                    console::tail(&log, 15)
                );
            }
            Boot::Booting { last } => progress.update(last.as_deref()),
        }
        if qemu::running_pid(m).is_none() {
            progress.finish();
            let said = std::fs::read_to_string(m.qemu_log()).unwrap_or_default();
            bail!(
                "QEMU for machine {:?} exited during boot: {}\nlast console lines ({}):\n{}",
                m.name,
                said.trim(),
                m.serial_log().display(),
                console::tail(&log, 15)
            );
        }
        if progress.elapsed() > timeout {
            progress.finish();
            bail!(
                "machine {:?} did not finish booting in {} s; it is left running: watch it with `b2d logs -f {}`, or `b2d stop {}`",
                m.name,
                timeout.as_secs(),
                m.name,
                m.name
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("2048"), Ok(2048));
        assert_eq!(parse_memory("4G"), Ok(4096));
        assert_eq!(parse_memory("1536M"), Ok(1536));
        assert!(parse_memory("100")
            .unwrap_err()
            .contains("at least 512 MiB"));
        assert!(parse_memory("lots").unwrap_err().contains("invalid size"));
    }

    fn machine(dir: &std::path::Path, disk: u64) -> Machine {
        let mut m = crate::host::machine::sample(dir);
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
        let note = grow_disk(&mut m, 3 << 30).unwrap().unwrap();
        assert!(note.contains("from 2 GiB to 3 GiB"), "{note}");
        assert_eq!(std::fs::metadata(m.disk()).unwrap().len(), 3 << 30);
        assert_eq!(m.config.disk_size, 3 << 30);
        let e = grow_disk(&mut m, 1 << 30).unwrap_err().to_string();
        assert!(
            e.contains("disk.img: the disk is 3 GiB and cannot shrink to 1 GiB"),
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
            ..Default::default()
        };
        assert_eq!(
            ignored_options(&m, &o).unwrap(),
            vec!["--memory 4096M".to_string(), "--disk-size 2M".to_string()]
        );
    }
}
