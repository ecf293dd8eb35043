//! The boot plan, in DESIGN order (see DESIGN.md "Boot (PID 1)"):
//! panic hook; early mounts; cmdline; modules; disk ∥ network ∥ Docker's
//! modules; swap; ssh
//! host keys; hostname; engine settings; profile; bootsync; services
//! under the supervisor; the ready line, then the modules nothing before
//! it needs (and beside it the clock kept right, see [`super::clock`]);
//! the signal loop; shutdown.
//!
//! [`prepare_system`] does everything up to the services over `&dyn Sys`
//! and injectable roots, so its order is unit-tested with `FakeSys`;
//! [`run`] is the thin PID 1 wrapper around it.

use super::disk::{self, PrepareOptions, PrepareOutcome};
use super::{
    cmdline, hostkeys, logger, modules, mounts, network, profile, ready, services, shutdown,
    supervisor, users,
};
use crate::sys::{PowerAction, RealSys, Sys};
use crate::wire::ready::Phases;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every root the boot touches; `/` and friends in production.
#[derive(Debug, Clone)]
pub struct Config {
    pub root: PathBuf,
    pub proc_root: PathBuf,
    pub sys_root: PathBuf,
    pub dev_root: PathBuf,
    pub etc: PathBuf,
    /// `/lib/modules` (the kernel release is appended).
    pub lib_modules: PathBuf,
    /// `uname -r` when None.
    pub kernel_release: Option<String>,
    /// `/var/lib/boot2docker`.
    pub state_dir: PathBuf,
    /// This binary, used as udhcpc's hook script.
    pub self_exe: PathBuf,
    pub dhcp_tries: u32,
    pub bootsync_timeout: Duration,
    pub ready_deadline: Duration,
}

impl Config {
    /// All roots under `root` (`/` at boot, a temp dir in tests).
    pub fn under(root: &Path) -> Config {
        let j = |p: &str| root.join(p);
        Config {
            root: root.to_path_buf(),
            proc_root: j("proc"),
            sys_root: j("sys"),
            dev_root: j("dev"),
            etc: j("etc"),
            lib_modules: j("lib/modules"),
            kernel_release: None,
            state_dir: j("var/lib/boot2docker"),
            self_exe: PathBuf::from("/init"),
            dhcp_tries: 5,
            bootsync_timeout: Duration::from_secs(120),
            ready_deadline: Duration::from_secs(120),
        }
    }

    pub fn production() -> Config {
        let mut c = Config::under(Path::new("/"));
        c.self_exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/init"));
        c
    }

    /// `/lib/modules/RELEASE` of the running (or configured) kernel.
    fn modules_dir(&self) -> PathBuf {
        let release = self.kernel_release.clone().unwrap_or_else(|| {
            nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        self.lib_modules.join(release)
    }

    /// The modules loaded once the machine is ready (`iso/modules-after.txt`).
    fn modules_after(&self) -> PathBuf {
        self.etc.join("b2d/modules.after")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Mount(#[from] mounts::MountError),
}

/// What the early boot produced.
#[derive(Debug, Clone)]
pub struct Booted {
    pub cmdline: cmdline::Cmdline,
    /// None when running from RAM.
    pub disk: Option<PrepareOutcome>,
    pub ips: Vec<String>,
    pub host_keys: Vec<PathBuf>,
    pub hostname: String,
    pub profile: profile::Profile,
    /// dockerd's TLS listener; None serves the unix socket only.
    pub tls: Option<services::TlsArgs>,
    /// The ends of the phases so far (the services' come with the ready
    /// line).
    pub phases: Phases,
    /// The host's shares this boot mounted (a suspend unmounts them).
    pub shares: Vec<crate::wire::guest_config::Share>,
    /// dockerd's environment from the engine settings (proxies…).
    pub docker_env: Vec<(String, String)>,
    /// The NIC on a private network the host gave this boot, if any.
    pub private: Option<crate::wire::network::PrivateNic>,
}

impl Booted {
    /// The data mount point for the ready line.
    pub fn data(&self) -> Option<String> {
        self.disk
            .as_ref()
            .and_then(|o| o.mountpoint.as_ref())
            .map(|p| p.display().to_string())
    }
}

/// Boot steps 1–6 and bootsync. Only the early mounts are fatal: every
/// later step logs its failure and the boot goes on (a Docker host from
/// RAM beats a dead VM).
pub fn prepare_system(sys: &dyn Sys, cfg: &Config) -> Result<Booted, BootError> {
    let now = || Some(logger::monotonic_ms());
    let mut phases = Phases {
        initramfs: now(),
        ..Phases::default()
    };
    // 1. Early mounts.
    mounts::mount_early(sys, &cfg.root, &mounts::early_table())?;
    mounts::ensure_dev_nodes(sys, &cfg.dev_root);
    mounts::make_root_shared(sys, &cfg.root);

    // 2. Command line.
    let cmd = cmdline::read(&cfg.proc_root);
    if cmd.debug {
        log::set_max_level(log::LevelFilter::Debug);
    }
    cmdline::log_options(&cmd);

    // 3. Modules.
    let mdir = cfg.modules_dir();
    let list = cfg.etc.join("b2d/modules");
    if let Err(e) = modules::load_all(sys, &mdir, &list, &cfg.sys_root, &cfg.modules_after()) {
        log::error!("modules: {e}; continuing with the built-in drivers only");
    }
    phases.modules = now();

    // The host's per-boot config (fw_cfg, whose driver is loaded now):
    // a private network's NIC, the shares, the engine settings.
    let host_cfg = super::shares::read_config(&cfg.sys_root);
    let private = host_cfg.as_ref().and_then(|c| c.network.clone());

    // 4. Disk and network in parallel, and beside them the modules only
    // the services need (their load overlaps the waits for the disk and
    // for DHCP).
    let (disk, (ips, net_end), later_end) = std::thread::scope(|s| {
        let net = s.spawn(|| {
            let (hook, tries) = (&cfg.self_exe, cfg.dhcp_tries);
            let ips = network::bring_up(sys, &cfg.sys_root, hook, tries, private.as_ref());
            (ips, now())
        });
        let later = s.spawn(|| {
            let list = cfg.etc.join("b2d/modules.docker");
            if let Err(e) = modules::load_list(sys, &mdir, &list, "modules for Docker") {
                log::error!("modules for Docker: {e}; dockerd loads what it can itself");
            }
            now()
        });
        let disk = prepare_disk(sys, cfg, &cmd);
        phases.disk = now();
        (
            disk,
            net.join().unwrap_or_default(),
            later.join().unwrap_or_default(),
        )
    });
    phases.network = net_end;
    phases.docker_modules = later_end;
    if ips.is_empty() {
        log::warn!("network: no IPv4 address");
    } else {
        log::info!("network: addresses {}", ips.join(", "));
    }
    if disk.is_none() {
        ram_state_dirs(sys, &cfg.root);
    }

    // 5. Swap, host keys, hostname.
    if let Some(swap) = disk.as_ref().and_then(|d| d.swap.as_ref()) {
        match sys.swapon(swap) {
            Ok(()) => log::info!("swap on {}", swap.display()),
            Err(e) => log::warn!("swapon {}: {e}", swap.display()),
        }
    }
    let b2d_dir = cfg.state_dir.join("b2d");
    let host_keys = hostkeys::ensure(&b2d_dir, &cfg.state_dir.join("ssh")).unwrap_or_else(|e| {
        log::error!("{e}");
        hostkeys::KEY_TYPES
            .iter()
            .map(|t| hostkeys::key_file(&cfg.state_dir.join("ssh"), t))
            .collect()
    });
    let hostname = users::choose(cmd.hostname.as_deref(), &b2d_dir.join("hostname"));
    let peers = super::private_network::hosts_of(private.as_ref());
    if let Err(e) = users::apply(sys, &cfg.etc, &hostname, &peers) {
        log::error!("{e}");
    }
    phases.keys = now();

    // Host folders at the same path, before dockerd can be asked for them
    // (9p's modules only when the host gave a 9p share).
    if let Some(names) = host_cfg.as_ref().and_then(super::shares::modules_needed) {
        if let Err(e) = modules::load_named(sys, &mdir, names, "modules for 9p shares") {
            log::error!("modules for 9p shares: {e}; mounting them may fail");
        }
    }
    let shares = host_cfg
        .as_ref()
        .map(|c| super::shares::mount_all(sys, &cfg.root, c))
        .unwrap_or_default();
    super::shares::mount_vbox(sys, &cfg.root, &cfg.sys_root);
    phases.shares = now();

    // 6. This boot's server certificate.
    let tls = super::tls::prepare(&b2d_dir, &cfg.state_dir.join("tls"), &hostname, &ips);
    phases.certificate = now();

    // Engine settings, profile and bootsync (before dockerd).
    let engine =
        super::engine::settings(host_cfg.as_ref().and_then(|c| c.engine.as_ref()), &b2d_dir);
    let docker_env =
        super::engine::apply(&super::engine::Paths::under(&cfg.root, &cfg.etc), &engine);
    let profile = profile::read(&cfg.state_dir.join("profile"));
    if let Err(e) = disk::persist::secure_state_dir(&cfg.state_dir) {
        log::warn!("{e}");
    }
    let sshd_run = cfg.root.join("run/sshd");
    if let Err(e) = std::fs::create_dir_all(&sshd_run) {
        log::warn!("cannot create {}: {e}", sshd_run.display());
    }
    services::run_bootsync(sys, &cfg.state_dir, cfg.bootsync_timeout);

    Ok(Booted {
        cmdline: cmd,
        disk,
        ips,
        host_keys,
        hostname,
        profile,
        tls,
        phases,
        shares,
        docker_env,
        private,
    })
}

/// Without a data disk, Docker's state goes on tmpfs: overlay2 cannot use
/// the overlay root itself as its upper layer.
fn ram_state_dirs(sys: &dyn Sys, root: &Path) {
    for d in ["var/lib/docker", "var/lib/containerd"] {
        let p = root.join(d);
        let r = std::fs::create_dir_all(&p).and_then(|()| {
            sys.mount(
                Some("tmpfs"),
                &p,
                Some("tmpfs"),
                crate::sys::MsFlags::empty(),
                Some("mode=0711"),
            )
        });
        match r {
            Ok(()) => log::info!("running from RAM: Docker state on tmpfs at {}", p.display()),
            Err(e) => log::warn!("tmpfs on {}: {e}", p.display()),
        }
    }
}

fn prepare_disk(sys: &dyn Sys, cfg: &Config, cmd: &cmdline::Cmdline) -> Option<PrepareOutcome> {
    if cmd.nodisk {
        log::warn!("disk: b2d.nodisk given; not touching any disk");
        return None;
    }
    let opts = PrepareOptions {
        devices: vec![],
        target: cfg.root.clone(),
        sys_root: cfg.sys_root.clone(),
        dev_root: cfg.dev_root.clone(),
        no_format: cmd.noformat,
        failpoint: None,
    };
    match disk::prepare(sys, &opts) {
        Ok(o) if o.mountpoint.is_some() => {
            log::info!("disk: {o}");
            for n in &o.notes {
                log::info!("disk: {n}");
            }
            Some(o)
        }
        Ok(o) => {
            for n in &o.notes {
                log::warn!("disk: {n}");
            }
            log::error!("disk: NO DATA DISK; running from RAM");
            None
        }
        Err(e) => {
            log::error!(
                "disk: {}; RUNNING FROM RAM, nothing will persist",
                crate::error_chain(&e)
            );
            None
        }
    }
}

/// The supervisor's services for this boot.
pub fn service_list(cfg: &Config, b: &Booted) -> Vec<supervisor::Service> {
    services::build(&services::Inputs {
        state_dir: &cfg.state_dir,
        host_keys: &b.host_keys,
        profile: &b.profile,
        shell: b.cmdline.shell,
        tty: services::console_tty(&cfg.sys_root),
        tls: b.tls.as_ref(),
        docker_env: &b.docker_env,
    })
}

/// Panic in PID 1: say so on the console, sync, power off.
pub fn install_panic_hook(console: PathBuf) {
    std::panic::set_hook(Box::new(move |info| {
        let msg = format!("b2d-init PANIC: {info}\nb2d-init: syncing and powering off\n");
        eprint!("{msg}");
        if let Ok(mut c) = std::fs::OpenOptions::new().write(true).open(&console) {
            use std::io::Write;
            let _ = c.write_all(msg.as_bytes());
        }
        RealSys.sync();
        let _ = RealSys.power(PowerAction::PowerOff);
    }));
}

/// Point fds 0–2 at the console when the kernel could not (no
/// /dev/console in the initramfs).
fn attach_console(dev_root: &Path) {
    // SAFETY: F_GETFD on a small integer only queries the fd table.
    let closed = unsafe { libc::fcntl(2, libc::F_GETFD) } == -1;
    if !closed {
        return;
    }
    use std::os::fd::AsRawFd;
    if let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev_root.join("console"))
    {
        for fd in 0..3 {
            // SAFETY: dup2 onto fds 0–2 from an fd we own; both are ints.
            unsafe { libc::dup2(f.as_raw_fd(), fd) };
        }
    }
}

/// PID 1: boot, supervise, shut down. Never returns.
pub fn run() -> ! {
    let cfg = Config::production();
    let console = cfg.dev_root.join("console");
    install_panic_hook(console.clone());
    std::env::set_var("PATH", services::PATH);
    logger::init(log::LevelFilter::Info);
    let sys = RealSys;
    if super::initrd::in_initramfs(&cfg.root) {
        log::info!("b2d-init {} in the initramfs", env!("CARGO_PKG_VERSION"));
        super::initrd::run(&sys);
    }
    if cmdline::read(&cfg.proc_root).floor {
        use std::os::unix::process::CommandExt;
        let err = crate::sys::run::command(cmdline::FLOOR).exec();
        log::error!(
            "b2d.floor: exec {}: {err}; booting the agent",
            cmdline::FLOOR
        );
    }
    log::info!("b2d-init {} starting", env!("CARGO_PKG_VERSION"));
    let booted = match prepare_system(&sys, &cfg) {
        Ok(b) => b,
        Err(e) => panic!("early boot failed: {e}"),
    };
    attach_console(&cfg.dev_root);
    if booted.disk.is_none() {
        ready::announce(&console, ready::RAM_WARNING);
    }

    // From here on no tool is run through Sys::run: block the signals the
    // supervisor takes through its signalfd (threads below inherit this).
    if let Err(e) = supervisor::block_signals() {
        panic!("cannot block signals: {e}");
    }
    shutdown::disable_cad();
    let mut sup = supervisor::Supervisor::new(service_list(&cfg, &booted), Default::default())
        .unwrap_or_else(|e| panic!("cannot create signalfd: {e}"));
    shutdown::watch_power_buttons(
        shutdown::power_buttons(&cfg.sys_root, &cfg.dev_root),
        || supervisor::Supervisor::request(PowerAction::PowerOff),
    );
    let docker_exits = sup.exit_counter("dockerd");
    let probes = ready::Probes {
        ssh_addr: "127.0.0.1:22".into(),
        docker_sock: super::docker_api::socket(&cfg.root),
        containerd_sock: cfg
            .root
            .join(services::CONTAINERD_SOCK.trim_start_matches('/')),
        deadline: cfg.ready_deadline,
        interval: Duration::from_millis(100),
        docker_exits,
    };
    let (ips, data, mut phases) = (booted.ips.clone(), booted.data(), booted.phases.clone());
    let con = console.clone();
    let memory = super::reclaim::Paths {
        proc_root: cfg.proc_root.clone(),
        sys_root: cfg.sys_root.clone(),
    };
    memory.report_single_pages();
    let after = (cfg.modules_dir(), cfg.modules_after());
    let watch = super::portwatch::Watch {
        proc_root: cfg.proc_root.clone(),
        sys_root: cfg.sys_root.clone(),
        dev_root: cfg.dev_root.clone(),
        docker_sock: super::docker_api::socket(&cfg.root),
    };
    let tunnel = watch.clone();
    let rtc = cfg.sys_root.join("class/rtc/rtc0");
    std::thread::spawn(move || {
        let up = ready::wait(&probes, logger::monotonic_ms);
        (phases.sshd, phases.containerd, phases.dockerd) = (up.ssh, up.containerd, up.docker);
        let line = crate::wire::ready::Ready {
            ms: logger::monotonic_ms(),
            ip: ips,
            data,
            ssh: up.ssh.is_some(),
            docker: up.docker.is_some(),
            phases,
        };
        ready::announce(&con, &line.line());
        let stat = std::fs::read_to_string(memory.proc_root.join("stat")).unwrap_or_default();
        if let Some(cpu) = ready::cpu_summary(&stat) {
            log::info!("{cpu}");
        }
        // What has nothing to do before dockerd answers starts now: under
        // TCG the boot is CPU-bound, and a watch's rounds (a /proc walk, an
        // RTC read) would come out of it.
        std::thread::spawn(move || super::clock::run(&RealSys, &rtc));
        std::thread::spawn(move || super::portwatch::run(&watch));
        if let Err(e) = modules::load_list(&RealSys, &after.0, &after.1, "modules after ready") {
            log::error!("modules after ready: {e}; the kernel loads them on first use");
        }
        // Memory is given back once the boot is over, not during it.
        super::reclaim::run(&memory, Default::default(), super::reclaim::EVERY);
    });
    let control = super::control::Control {
        root: cfg.root.clone(),
        proc_root: cfg.proc_root.clone(),
        sys_root: cfg.sys_root.clone(),
        dev_root: cfg.dev_root.clone(),
        hook: cfg.self_exe.clone(),
        shares: booted.shares.clone(),
        remount_for: crate::wire::control::REMOUNT_FOR,
        private: booted.private.clone(),
    };
    std::thread::spawn(move || super::tunnel::run(&tunnel));
    std::thread::spawn(move || super::control::run(&RealSys, &control));

    let action = match sup.run(|_| false) {
        supervisor::LoopEnd::Shutdown(a) => a,
        supervisor::LoopEnd::Stopped => PowerAction::PowerOff,
    };
    log::info!("shutdown requested: {action}");
    sup.stop_all();
    sup.kill_everything(Duration::from_secs(3));
    shutdown::finish(&sys, &cfg.proc_root, &cfg.root, action);
    // power() only returns on failure: there is nothing left to do.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
#[path = "boot_tests.rs"]
mod tests;
