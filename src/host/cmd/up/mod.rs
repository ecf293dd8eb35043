//! `b2d up`: create the machine if it does not exist, apply changed
//! settings to a stopped one (a new ISO, CPUs, memory, a larger disk),
//! boot it and wait for the guest's ready line. A running machine is left
//! as it is. [`run`] is the verb: progress goes to the terminal's
//! [`Sink`] while it works; what happened comes back as an [`Outcome`],
//! which [`render`] turns into what to print.

mod changes;
mod options;
mod render;
mod resume;
mod wait;

use crate::disk::size::gib;
use crate::host::cmd::{Context, NoProgram, Output};
use crate::host::engine::{self, EngineError};
use crate::host::forward::fixed::{self, PortError};
use crate::host::network::{self, Attachment, NetworkError};
use crate::host::shares;
use crate::host::store::create::{self, CreateError, NewMachine};
use crate::host::store::iso::{self, IsoError};
use crate::host::store::keys;
use crate::host::store::{Config, Machine, MachineError, Store};
use crate::host::ui::progress::{Event, Sink};
use crate::host::vm::accel::{self, Accel};
use crate::host::vm::console::{self, Boot};
use crate::host::vm::{self, QemuError};
use crate::host::{agent, client::context};
use crate::wire::ready::Ready;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use changes::Note;
pub use options::{UpArgs, UpOptions};
pub use render::render;

pub const DEFAULT_CPUS: u32 = 2;
pub const DEFAULT_MEMORY_MIB: u32 = 2048;
pub const DEFAULT_DISK: u64 = 20 << 30;
pub use crate::host::cmd::flags::{parse_memory, MemoryError, MIN_MEMORY_MIB};

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error(transparent)]
    Iso(#[from] IsoError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Qemu(#[from] QemuError),
    #[error(transparent)]
    Share(#[from] crate::host::shares::ShareError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Program(#[from] NoProgram),
    #[error("{path}: the disk is {now} and cannot shrink to {size} (that would cut its filesystem); to start over, `b2d rm {name}` and `b2d up {name} --disk-size …`")]
    Shrink {
        name: String,
        path: PathBuf,
        now: String,
        size: String,
    },
    /// Resizing the disk image failed.
    #[error(transparent)]
    Resize(#[from] crate::errors::PathError),
    #[error("machine \"{name}\" is up but nothing answers on 127.0.0.1:{port} (see {log})")]
    DockerUnreachable {
        name: String,
        port: u16,
        log: PathBuf,
    },
    #[error("machine \"{name}\" booted but its Docker engine did not answer{said}\nIt is left running: see `b2d status {name}` and `b2d logs {name}`; to change an engine setting, `b2d stop {name}`, then `b2d up {name}` with the setting fixed (e.g. `--engine-opt none`)\nlast console lines:\n{tail}")]
    DockerDown {
        name: String,
        /// `: dockerd said: …`, or nothing.
        said: String,
        tail: String,
    },
    #[error("machine \"{name}\" failed to boot: {why}\nlast console lines ({log}):\n{tail}")]
    BootFailed {
        name: String,
        why: String,
        log: PathBuf,
        tail: String,
    },
    #[error("QEMU for machine \"{name}\" exited during boot: {said}\nlast console lines ({log}):\n{tail}")]
    QemuExited {
        name: String,
        said: String,
        log: PathBuf,
        tail: String,
    },
    #[error("machine \"{name}\" did not finish booting in {secs} s; it is left running: watch it with `b2d logs -f {name}`, or `b2d stop {name}`")]
    Timeout { name: String, secs: u64 },
}

/// What `up` did.
#[derive(Debug)]
pub enum Outcome {
    AlreadyRunning {
        /// Options it cannot apply until the machine restarts.
        ignored: Vec<String>,
        notes: Vec<Note>,
    },
    Booted {
        ready: Box<Ready>,
        /// Wall time from starting QEMU to the ready line (for a resume,
        /// from reading the state to an answering Docker API).
        secs: f64,
        start: Start,
        accel: Accel,
        notes: Vec<Note>,
    },
}

/// How a machine came up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Made by this `up`: its disk was formatted on the way.
    First,
    Boot,
    /// From the state `b2d suspend` saved.
    Resume,
}

impl Start {
    pub fn name(self) -> &'static str {
        match self {
            Start::First => "first boot",
            Start::Boot => "boot",
            Start::Resume => "resume",
        }
    }
}

/// `b2d up`: progress on the terminal while it works; the notes, the
/// time and how to connect when it is done.
pub fn run(store: &Store, args: UpArgs, cx: &mut Context) -> Result<Output, UpError> {
    let o = args.options(cx)?;
    let (m, outcome) = up(store, &o, cx.term.progress().as_mut())?;
    Ok(render(&m, &outcome, &cx.exe))
}

pub fn up(
    store: &Store,
    o: &UpOptions,
    sink: &mut dyn Sink,
) -> Result<(Machine, Outcome), UpError> {
    let created = create(store, o, sink)?;
    start(store, o, created, sink)
}

/// Create machine `o.name` unless it exists; whether it did. Machines
/// are created one at a time (the store's creation lock), so two never
/// take the same ports or network address.
pub fn create(store: &Store, o: &UpOptions, sink: &mut dyn Sink) -> Result<bool, UpError> {
    crate::host::store::validate_name(&o.name)?;
    vm::find()?;
    if let Some(n) = &o.network {
        network::parse_arg(n)?;
    }
    let _creating = store.lock_creation()?;
    if store.exists(&o.name) {
        return Ok(false);
    }
    let iso = iso::resolve(o.iso.as_deref())?;
    let found = iso.note();
    let (new, share_notes) = new_machine(store, o, iso.path)?;
    if let Some(line) = found {
        sink.event(Event::Note(line));
    }
    sink.event(Event::Note(format!(
        "Creating machine \"{}\" ({} CPUs, {} MiB memory, {} disk{}) in {}",
        o.name,
        new.config.cpus,
        new.config.memory_mib,
        gib(new.config.disk_size),
        match &new.config.network {
            Some(a) => format!(", {} on network {}", a.address, a.name),
            None => String::new(),
        },
        store.dir(&o.name).display()
    )));
    create::create(store, &new)?;
    for n in share_notes {
        sink.event(Event::Note(n.to_string()));
    }
    Ok(true)
}

/// `up` of machine `o.name`, which exists (`created`: made just now).
pub fn start(
    store: &Store,
    o: &UpOptions,
    created: bool,
    sink: &mut dyn Sink,
) -> Result<(Machine, Outcome), UpError> {
    let qemu = vm::find()?;
    let mut m = store.open(&o.name)?;
    let _lock = m.lock()?;
    if let Some(pid) = vm::running_pid(&m) {
        let ignored = changes::ignored(&m, o)?;
        let log = console::read_log(&m.serial_log());
        if !matches!(console::read(&log), Boot::Ready(_)) {
            // Still booting (an earlier `up` gave up waiting): wait again.
            sink.event(Event::Begin(format!(
                "Waiting for {} (QEMU pid {pid})",
                m.name
            )));
            let waited = wait::ready(&m, Instant::now(), o.timeout, sink);
            sink.event(Event::End);
            waited?;
        }
        let notes = after_boot(store, &m, o);
        return Ok((m, Outcome::AlreadyRunning { ignored, notes }));
    }
    let mut notes = Vec::new();
    if !created {
        match resume::attempt(store, &mut m, o, &qemu, sink)? {
            resume::Attempt::NotSuspended => {}
            resume::Attempt::Cold(n) => notes = n,
            resume::Attempt::Resumed {
                ready,
                secs,
                accel,
                notes,
            } => {
                let outcome = Outcome::Booted {
                    ready,
                    secs,
                    start: Start::Resume,
                    accel,
                    notes,
                };
                return Ok((m, outcome));
            }
        }
        // A machine made just now already has what the options asked for.
        notes.extend(changes::apply(&mut m, o)?);
        if let Some(left) = changes::network(store, &mut m, o)? {
            notes.extend(
                crate::host::vm::peers::announce(store, &left)
                    .into_iter()
                    .map(Note::Peers),
            );
        }
    }
    notes.extend(
        fixed::for_boot(store, &mut m, o.ports())?
            .into_iter()
            .map(Note::Port),
    );
    if m.config.mounts.is_none() {
        let chosen = shares::from_args(&[], o.home.as_deref(), &shares::plan::hidden_for(&m))?;
        m.config.mounts = Some(chosen.mounts);
        notes.extend(chosen.notes.into_iter().map(Note::Shares));
    }
    m.save_config()?;
    rotate_log(&m);
    if accel::will_probe() {
        sink.event(Event::Note(
            "Checking whether KVM works here (a short test boot, once per host boot)…".into(),
        ));
    }
    let accel = accel::choose(&m.iso());
    let start = Instant::now();
    sink.event(Event::Begin(format!(
        "Booting {} ({})",
        m.name,
        accel.name()
    )));
    sink.event(Event::Step(Some("starting QEMU".into())));
    let plan = shares::plan_for(&m)?;
    notes.extend(plan.notes.iter().cloned().map(Note::Shares));
    let booted = vm::start(&m, &qemu, accel, &plan, vm::Launch::Cold)
        .map_err(UpError::from)
        .and_then(|_| {
            // The agent first: forwards work as soon as the guest listens.
            let started = after_boot(store, &m, o);
            notes.extend(started.into_iter().filter(|n| *n != Note::AgentStarted));
            wait::ready(&m, start, o.timeout, sink)
        });
    sink.event(Event::End);
    let ready = booted?;
    let secs = start.elapsed().as_secs_f64();
    let docker_addr = format!("127.0.0.1:{}", m.config.docker_port);
    if !crate::util::tcp_open(&docker_addr, Duration::from_secs(3)) {
        return Err(UpError::DockerUnreachable {
            name: m.name.clone(),
            port: m.config.docker_port,
            log: m.qemu_log(),
        });
    }
    let log = console::read_log(&m.serial_log());
    notes.extend(console::errors(&log).into_iter().map(Note::Guest));
    Ok((
        m,
        Outcome::Booted {
            ready: Box::new(ready),
            secs,
            start: if created { Start::First } else { Start::Boot },
            accel,
            notes,
        },
    ))
}

fn new_machine(
    store: &Store,
    o: &UpOptions,
    iso: PathBuf,
) -> Result<(NewMachine, Vec<shares::ShareNote>), UpError> {
    let hidden = shares::plan::hidden_in(store);
    let chosen = shares::from_args(&o.mounts, o.home.as_deref(), &hidden)?;
    let engine = engine::apply(&Default::default(), &o.engine)?;
    let wire = engine::for_guest_here(&engine)?;
    let (ssh_port, docker_port) = fixed::for_new(store, &o.name, o.ports())?;
    let config = Config {
        cpus: o.cpus.unwrap_or(DEFAULT_CPUS),
        memory_mib: o.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB),
        disk_size: o.disk_size.unwrap_or(DEFAULT_DISK),
        ssh_port,
        docker_port,
        mounts: Some(chosen.mounts),
        mount_type: o.mount_type()?.flatten(),
        engine,
        network: match o
            .network
            .as_deref()
            .map(network::parse_arg)
            .transpose()?
            .flatten()
        {
            Some(net) => Some(Attachment {
                address: network::allocate(store, &o.name, &net)?,
                name: net,
            }),
            None => None,
        },
        swarm: o.swarm.clone(),
    };
    // The user's own key too, so plain `ssh -p PORT docker@127.0.0.1` works.
    let extra_keys = o
        .home
        .as_deref()
        .and_then(|h| keys::default_key(h).ok())
        .into_iter()
        .collect();
    let new = NewMachine {
        name: o.name.clone(),
        iso,
        config,
        extra_keys,
        engine: wire,
    };
    Ok((new, chosen.notes))
}

/// What a running machine needs beside QEMU: its host agent, the docker
/// context (current only when asked), and the machines on its network
/// told that it is there. None of them stops the boot.
fn after_boot(store: &Store, m: &Machine, o: &UpOptions) -> Vec<Note> {
    let mut notes = Vec::new();
    match agent::ensure(m, &o.exe) {
        Ok(true) => notes.push(Note::AgentStarted),
        Ok(false) => {}
        Err(e) => notes.push(Note::NoAgent(e.to_string())),
    }
    if let Some(cfg) = context::config_dir() {
        let name = context::name(&m.name);
        let r = context::write(&cfg, &name, &m.name, m.config.docker_port, &m.cert_dir()).and_then(
            |()| {
                if o.use_context {
                    context::set_current(&cfg, Some(&name))
                } else {
                    Ok(())
                }
            },
        );
        if let Err(e) = r {
            notes.push(Note::Context(e.to_string()));
        }
    }
    if let Some(a) = &m.config.network {
        let told = crate::host::vm::peers::announce(store, &a.name);
        notes.extend(told.into_iter().map(Note::Peers));
    }
    notes
}

/// Keep the previous boot's console as `serial.log.1`.
fn rotate_log(m: &Machine) {
    let log = m.serial_log();
    if log.exists() {
        let _ = std::fs::rename(&log, m.serial_log_before());
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
            .to_string()
            .contains("at least 512 MiB"));
        assert!(parse_memory("lots")
            .unwrap_err()
            .to_string()
            .contains("invalid size"));
        assert_eq!(
            parse_memory("100").unwrap_err().to_string(),
            "\"100\": memory must be at least 512 MiB (e.g. 2G or 2048)"
        );
    }
}
