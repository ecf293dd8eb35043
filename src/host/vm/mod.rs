//! The QEMU driver for machines: find QEMU, start it detached with the
//! machine's disk, ISO and forwards, tell whether it still runs, and stop
//! it through QMP (ACPI power button) or a signal.
//!
//! Beside it: [`spec`] (the command line), [`accel`] (KVM or TCG),
//! [`qmp`], [`console`] (reading the serial log) and [`console_rotate`]
//! (keeping it bounded), [`ram`] (guest RAM as a memfd) and
//! [`control`] (the guest's control port).

pub mod accel;
pub mod binary;
pub mod console;
pub mod console_rotate;
pub mod control;
pub mod peers;
pub mod qmp;
pub mod ram;
pub mod spec;

use crate::errors::{PathError, WithPath};
use crate::host::forward::fixed::PortError;
use crate::host::shares::{self, virtiofs};
use crate::host::store::Machine;
use crate::host::vm::accel::Accel;
use crate::host::vm::spec::{DiskBus, VmSpec};
use crate::util::qemu_opt_path as opt_path;
use crate::wire::control::CHANNEL as CONTROL;
use crate::wire::guest_config::{GuestConfig, ShareFs};
use crate::wire::ports::CHANNEL;
use crate::wire::tunnel::CHANNEL as TUNNEL;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error(transparent)]
    Missing(#[from] binary::Missing),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("QEMU did not start machine \"{machine}\": {msg}")]
    Start { machine: String, msg: String },
    #[error("{path}: the QMP socket path is {len} bytes, over the 107 a unix socket allows: set XDG_DATA_HOME to a shorter directory")]
    SocketPath { path: PathBuf, len: usize },
    #[error(transparent)]
    Virtiofs(#[from] virtiofs::VirtiofsError),
    #[error(transparent)]
    Engine(#[from] crate::host::engine::EngineError),
    #[error(transparent)]
    Io(#[from] PathError),
}

/// The QEMU binary ([`binary::find`]), or what to install.
pub fn find() -> Result<PathBuf, QemuError> {
    Ok(binary::find()?)
}

/// How a QEMU run begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// Boot from the ISO.
    Cold,
    /// Wait for a saved state (QMP `migrate-incoming`), with the guest
    /// RAM in the memfd `ram_fd` of this process ([`ram`]); the virtiofs
    /// devices are plugged in after it loads, the console log is kept.
    Incoming { ram_fd: RawFd },
}

impl Launch {
    fn incoming(self) -> bool {
        matches!(self, Launch::Incoming { .. })
    }

    fn ram_fd(self) -> Option<RawFd> {
        match self {
            Launch::Cold => None,
            Launch::Incoming { ram_fd } => Some(ram_fd),
        }
    }
}

/// A virtio-serial port named `name` in the guest, served by QEMU on the
/// unix socket `sock`.
fn serial_port(id: &str, sock: &Path, name: &str) -> [String; 4] {
    [
        "-chardev".into(),
        format!("socket,id={id},path={},server=on,wait=off", opt_path(sock)),
        "-device".into(),
        format!("virtserialport,bus=vser0.0,chardev={id},name={name}"),
    ]
}

/// The full QEMU command line for `m`.
pub fn args(m: &Machine, accel: Accel, shares: &shares::Plan, launch: Launch) -> Vec<String> {
    let mut spec = VmSpec::new(m.iso()).disk(m.disk(), "raw", DiskBus::VirtioScsi);
    spec.cpus = m.config.cpus;
    spec.memory_mib = m.config.memory_mib;
    spec.no_reboot = false;
    spec.durable = true;
    let mut a = vec![
        "-name".into(),
        format!("b2d-{},process=b2d-{}", m.name, m.name),
        "-daemonize".into(),
        "-pidfile".into(),
        m.pid_file().display().to_string(),
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", opt_path(&m.qmp_socket())),
        // The host agent's own monitor, and the guest's port channel.
        "-qmp".into(),
        format!(
            "unix:{},server=on,wait=off",
            opt_path(&m.agent_qmp_socket())
        ),
        "-device".into(),
        "virtio-serial-pci,id=vser0".into(),
    ];
    for (id, sock, name) in [
        ("agent0", m.ports_channel(), CHANNEL),
        ("tunnel0", m.tunnel_channel(), TUNNEL),
        ("control0", m.control_channel(), CONTROL),
    ] {
        a.extend(serial_port(id, &sock, name));
    }
    a.extend(ram::qemu_args(m.config.memory_mib, launch.ram_fd()));
    a.extend(shares::qemu_args(m, shares, !launch.incoming()));
    if launch.incoming() {
        // Paused after loading whatever the state says: it runs only
        // once its checksum is known good.
        a.extend(["-S".into(), "-incoming".into(), "defer".into()]);
    }
    a.extend(spec.args(
        accel,
        m.config.ssh_port,
        m.config.docker_port,
        &m.serial_log(),
        None,
    ));
    // After the user network's NIC, which stays eth0.
    a.extend(crate::host::network::qemu_args(&m.store(), m));
    a
}

/// Start QEMU detached; returns its pid once the VM runs. QEMU's own
/// messages go to `qemu.log`; a forward it cannot bind is a port error.
pub fn start(
    m: &Machine,
    qemu: &Path,
    accel: Accel,
    shares: &shares::Plan,
    launch: Launch,
) -> Result<u32, QemuError> {
    let mut socks = vec![
        m.qmp_socket(),
        m.agent_qmp_socket(),
        m.ports_channel(),
        m.tunnel_channel(),
        m.control_channel(),
    ];
    if shares.virtiofsd.is_some() {
        socks.extend((0..shares.shares.len()).map(|i| m.virtiofs_socket(i)));
    }
    for sock in socks {
        let len = sock.as_os_str().len();
        if len > 107 {
            return Err(QemuError::SocketPath { path: sock, len });
        }
        let _ = std::fs::remove_file(&sock);
    }
    let _ = std::fs::remove_file(m.pid_file());
    let mut config = shares::guest_config(shares);
    // The engine settings, from the host's environment of this boot
    // (proxies). A resume boots nothing: the guest keeps what it has.
    let engine = crate::host::engine::for_guest_here(&m.config.engine);
    config.engine = match launch {
        Launch::Cold => Some(engine?),
        Launch::Incoming { .. } => engine.ok(),
    };
    // The private NIC and its peers; a resumed guest keeps what it was
    // told, and `b2d up` tells it what changed (vm::peers::announce).
    config.network = match launch {
        Launch::Cold => crate::host::network::nic(&m.store(), m),
        Launch::Incoming { .. } => {
            crate::small_file::read(&m.guest_config(), crate::small_file::JSON_LIMIT)
                .ok()
                .and_then(|t| serde_json::from_slice::<GuestConfig>(&t).ok())
                .and_then(|c| c.network)
        }
    };
    let path = m.guest_config();
    let text =
        serde_json::to_vec(&config).map_err(|e| PathError::new("encode", &path, e.into()))?;
    crate::atomic::write(&path, &text, 0o644)?;
    let mut daemons = match &shares.virtiofsd {
        Some(bin) => virtiofs::start_all(m, bin, shares)?,
        None => Vec::new(),
    };
    let started = run(m, qemu, accel, shares, launch);
    if started.is_err() {
        for d in &mut daemons {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
    started
}

/// Run QEMU (it daemonizes once the VM runs) and read its pid.
fn run(
    m: &Machine,
    qemu: &Path,
    accel: Accel,
    shares: &shares::Plan,
    launch: Launch,
) -> Result<u32, QemuError> {
    let log_path = m.qemu_log();
    let log = std::fs::File::create(&log_path).with_path("create", &log_path)?;
    let mut cmd = crate::sys::run::command(qemu);
    if let Some(fd) = launch.ram_fd() {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure only calls fcntl (async-signal-safe).
        unsafe { cmd.pre_exec(move || ram::inherit(fd)) };
    }
    if shares.fs() == ShareFs::NineP && !shares.shares.is_empty() {
        // QEMU serves the 9p shares itself: it runs confined as
        // virtiofsd would, on their views where namespaces work.
        let io = |e| PathError::wrap("prepare the shares in", m.hidden_dir(), e);
        let views = match shares.namespaces {
            true => Some(shares::views(m, shares).map_err(io)?),
            false => None,
        };
        shares::confine::prepare(views.as_deref(), &m.hidden_dir())
            .map_err(io)?
            .apply(&mut cmd);
    }
    let status = cmd
        .args(args(m, accel, shares, launch))
        .current_dir(&m.dir)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().with_path("reopen", &log_path)?)
        .stderr(log)
        .status()
        .map_err(|e| QemuError::Start {
            machine: m.name.clone(),
            msg: format!("{}: {e}", qemu.display()),
        })?;
    let said = std::fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        for (port, what) in [(m.config.ssh_port, "ssh"), (m.config.docker_port, "docker")] {
            if said.contains("host forwarding") && said.contains(&format!(":{port}-")) {
                return Err(PortError::InUse {
                    port,
                    what,
                    machine: m.name.clone(),
                }
                .into());
            }
        }
        return Err(QemuError::Start {
            machine: m.name.clone(),
            msg: format!("{status}: {}", said.trim()),
        });
    }
    read_pid(&m.pid_file()).ok_or_else(|| QemuError::Start {
        machine: m.name.clone(),
        msg: format!("no pid in {}", m.pid_file().display()),
    })
}

/// The pid in a pid file (a regular file of a few bytes; anything else
/// names no pid).
pub fn read_pid(pid_file: &Path) -> Option<u32> {
    let text = crate::small_file::read(pid_file, 64).ok()?;
    std::str::from_utf8(&text).ok()?.trim().parse().ok()
}

/// The pid of the machine's QEMU if it runs: the pid file names a live
/// process whose command line carries this machine's directory (a reused
/// pid does not count).
pub fn running_pid(m: &Machine) -> Option<u32> {
    running_pid_of(&m.pid_file())
}

/// [`running_pid`] from the pid file alone, for a machine whose config
/// cannot be read: the live process it names, if `pid_file` is one of
/// that process's arguments (QEMU's `-pidfile`).
pub fn running_pid_of(pid_file: &Path) -> Option<u32> {
    let pid = read_pid(pid_file)?;
    let needle = pid_file.display().to_string();
    cmdline(pid)?.contains(&needle).then_some(pid)
}

/// The arguments of process `pid` (none for a zombie or a gone process).
/// (NUL-separated; `procfs-core` has no parser for it, and the `procfs`
/// crate that has one would add its own /proc access layer for two lines.)
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// The accelerator process `pid` runs under (`tcg`, `kvm`).
pub fn accel_of(pid: u32) -> Option<String> {
    let args = cmdline(pid)?;
    let i = args.iter().position(|a| a == "-accel")?;
    Some(args.get(i + 1)?.split(',').next()?.to_string())
}

/// Press the ACPI power button through QMP.
pub fn powerdown(m: &Machine) -> std::io::Result<()> {
    let mut q = crate::host::vm::qmp::Qmp::connect(&m.qmp_socket(), Duration::from_secs(10))?;
    q.execute("system_powerdown", None).map(drop)
}

/// Kill the machine's QEMU if it runs and forget its pid and socket.
pub fn stop_now(m: &Machine) {
    if let Some(pid) = running_pid(m) {
        kill(pid);
        wait_gone(m, Duration::from_secs(10));
    }
    cleanup(m);
}

/// Wait until the machine's QEMU is gone; false on timeout.
pub fn wait_gone(m: &Machine, limit: Duration) -> bool {
    wait_gone_of(&m.pid_file(), limit)
}

/// Kill the QEMU `pid_file` names if it runs (see [`running_pid_of`])
/// and wait for it to go, up to 10 s; false if it is still there.
pub fn kill_of(pid_file: &Path) -> bool {
    if let Some(pid) = running_pid_of(pid_file) {
        kill(pid);
        return wait_gone_of(pid_file, Duration::from_secs(10));
    }
    true
}

fn wait_gone_of(pid_file: &Path, limit: Duration) -> bool {
    let start = std::time::Instant::now();
    while running_pid_of(pid_file).is_some() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    true
}

/// Remove what a QEMU run leaves behind.
pub fn cleanup(m: &Machine) {
    let _ = std::fs::remove_file(m.pid_file());
    let _ = std::fs::remove_file(m.qmp_socket());
    let _ = std::fs::remove_file(m.agent_qmp_socket());
    let _ = std::fs::remove_file(m.ports_channel());
    let _ = std::fs::remove_file(m.forwards_file());
    let _ = std::fs::remove_file(m.control_channel());
}

pub fn kill(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::store::sample;

    fn machine(dir: &Path) -> Machine {
        let mut m = sample(dir);
        m.config.cpus = 3;
        m.config.memory_mib = 1536;
        m
    }

    #[test]
    fn machine_command_line() {
        let m = machine(Path::new("/data/m/dev"));
        let a = args(&m, Accel::Tcg, &shares::Plan::none(), Launch::Cold).join(" ");
        for want in [
            "-name b2d-dev,process=b2d-dev",
            "-daemonize -pidfile /data/m/dev/qemu.pid",
            "-qmp unix:/data/m/dev/qmp.sock,server=on,wait=off",
            "-m 1536 -smp 3",
            "file=/data/m/dev/disk.img,format=raw",
            "scsi-hd,drive=d0",
            "file=/data/m/dev/b2d.iso,media=cdrom",
            "hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:40376-:2376",
            "-chardev file,id=serial0,path=/data/m/dev/serial.log,append=on -serial chardev:serial0",
            "-chardev socket,id=control0,path=/data/m/dev/control.sock,server=on,wait=off",
            "virtserialport,bus=vser0.0,chardev=control0,name=org.b2d.control.0",
            "-accel tcg,thread=single,tb-size=64",
            "-qmp unix:/data/m/dev/agent-qmp.sock,server=on,wait=off",
            "-chardev socket,id=agent0,path=/data/m/dev/agent.sock,server=on,wait=off",
            "virtserialport,bus=vser0.0,chardev=agent0,name=org.b2d.agent.0",
            "-chardev socket,id=tunnel0,path=/data/m/dev/tunnel.sock,server=on,wait=off",
            "virtserialport,bus=vser0.0,chardev=tunnel0,name=org.b2d.tunnel.0",
            "-fw_cfg name=opt/org.b2d/config,file=/data/m/dev/guest-config.json",
            "memory-backend-memfd,id=mem0,size=1536M,share=on -machine memory-backend=mem0",
        ] {
            assert!(a.contains(want), "{want} missing from {a}");
        }
        assert!(!a.contains("-no-reboot"));
        assert!(!a.contains("-incoming"));
        let resume = args(
            &m,
            Accel::Tcg,
            &shares::Plan::none(),
            Launch::Incoming { ram_fd: 7 },
        )
        .join(" ");
        assert!(
            resume.contains(
                "memory-backend-file,id=mem0,size=1536M,share=on,mem-path=/proc/self/fd/7"
            ),
            "{resume}"
        );
        assert!(resume.ends_with("-incoming defer") || resume.contains("-incoming defer "));
        assert!(
            resume.contains("path=/data/m/dev/serial.log,append=on"),
            "{resume}"
        );
    }

    #[test]
    fn a_stale_pid_file_is_not_a_running_machine() {
        let t = tempfile::tempdir().unwrap();
        let m = machine(t.path());
        assert_eq!(running_pid(&m), None);
        // Our own pid is alive but not this machine's QEMU.
        std::fs::write(m.pid_file(), std::process::id().to_string()).unwrap();
        assert_eq!(running_pid(&m), None);
    }
}
