//! Services under supervision (boot step 7) and PID 1's reaping duty.
//!
//! Children are started with `std::process::Command` in their own session,
//! restarted on exit with exponential backoff, and every exit is logged.
//! The loop waits on a signalfd (SIGCHLD and the shutdown signals, blocked
//! in every thread) with a timeout equal to the next scheduled restart, so
//! it never spins. Each wake-up reaps *all* exited children with
//! `waitpid(-1, WNOHANG)`: supervised ones are matched by pid, anything
//! else is an orphan PID 1 inherited and is reaped and logged.

mod spec;
pub mod why_ended;

pub use spec::{describe, shutdown_for, Backoff, Event, LoopEnd, Output, Restart, Service};

use crate::errors::{PathError, WithPath};
use crate::sys::{CommandLine, PowerAction};
use nix::sys::signal::{kill, killpg, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The signals PID 1 handles through the signalfd.
pub fn handled_signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGHUP,
    ] {
        s.add(sig);
    }
    s
}

/// Block the handled signals in the calling thread (threads spawned later
/// inherit the mask). Supervised children get an empty mask back; anything
/// else spawned afterwards (e.g. through `Sys::run`) would inherit the
/// blocked set, so PID 1 blocks only once the boot steps that run tools are
/// done.
pub fn block_signals() -> nix::Result<()> {
    handled_signals().thread_block()
}

/// Make this process the reaper of its orphaned descendants (what PID 1
/// is by nature); lets the supervisor run, and be tested, as another PID.
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument and touches
    // no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A service's argv as a shell would show it.
fn command_line(argv: &[String]) -> String {
    match argv.split_first() {
        Some((prog, args)) => CommandLine::new(prog, args).to_string(),
        None => "(an empty command)".into(),
    }
}

struct Slot {
    spec: Service,
    pid: Option<Pid>,
    started: Instant,
    delay: Option<Duration>,
    restart_at: Option<Instant>,
    starts: u32,
    exits: u32,
    /// The exits, for other threads ([`Supervisor::exit_counter`]).
    shared_exits: Arc<AtomicU32>,
    /// Where this run's output began in its log file.
    log_start: u64,
}

pub struct Supervisor {
    slots: Vec<Slot>,
    backoff: Backoff,
    sfd: SignalFd,
    /// Upper bound on a wait: a safety net should SIGCHLD be delivered to a
    /// thread that does not block it (never the case in PID 1).
    pub tick: Duration,
    stopping: bool,
    pub events: Vec<Event>,
}

impl Supervisor {
    /// The handled signals must already be blocked (see [`block_signals`]).
    pub fn new(services: Vec<Service>, backoff: Backoff) -> nix::Result<Supervisor> {
        let sfd = SignalFd::with_flags(
            &handled_signals(),
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )?;
        let now = Instant::now();
        let slots = services
            .into_iter()
            .map(|spec| Slot {
                spec,
                pid: None,
                started: now,
                delay: None,
                restart_at: Some(now),
                starts: 0,
                exits: 0,
                shared_exits: Arc::new(AtomicU32::new(0)),
                log_start: 0,
            })
            .collect();
        Ok(Supervisor {
            slots,
            backoff,
            sfd,
            tick: Duration::from_secs(5),
            stopping: false,
            events: Vec::new(),
        })
    }

    pub fn starts(&self, name: &str) -> u32 {
        self.slot(name).map_or(0, |s| s.starts)
    }
    pub fn exits(&self, name: &str) -> u32 {
        self.slot(name).map_or(0, |s| s.exits)
    }
    /// How many times service `name` ended (or failed to start), for
    /// another thread to watch (the ready line gives up on a dockerd that
    /// keeps exiting).
    pub fn exit_counter(&self, name: &str) -> Option<Arc<AtomicU32>> {
        self.slot(name).map(|s| s.shared_exits.clone())
    }
    pub fn pid(&self, name: &str) -> Option<i32> {
        self.slot(name).and_then(|s| s.pid).map(Pid::as_raw)
    }
    fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.spec.name == name)
    }

    fn spawn(spec: &Service) -> std::io::Result<u32> {
        let (prog, args) = spec
            .argv
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty argv"))?;
        let mut cmd = crate::sys::run::command(prog);
        cmd.args(args);
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        match &spec.output {
            Output::Console => {}
            Output::File(path) => {
                let f = open_log(path)?;
                cmd.stdin(std::process::Stdio::null())
                    .stdout(f.try_clone()?)
                    .stderr(f);
            }
        }
        // SAFETY: the closure runs in the child between fork and exec and
        // only calls sigprocmask(2) and setsid(2), both async-signal-safe.
        // The mask must be cleared by hand: std does not reset it, and the
        // child would otherwise inherit PID 1's blocked SIGTERM/SIGCHLD.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::signal::sigprocmask(
                    nix::sys::signal::SigmaskHow::SIG_SETMASK,
                    Some(&SigSet::empty()),
                    None,
                )?;
                nix::unistd::setsid()
                    .map(drop)
                    .map_err(std::io::Error::from)
            });
        }
        // The Child handle is dropped without waiting: the reaper owns exits.
        cmd.spawn().map(|c| c.id())
    }

    /// Start every service whose (re)start time has come.
    fn start_due(&mut self) {
        if self.stopping {
            return;
        }
        let now = Instant::now();
        for s in &mut self.slots {
            if s.pid.is_some() || s.restart_at.is_none_or(|t| t > now) {
                continue;
            }
            s.restart_at = None;
            s.started = now;
            s.starts += 1;
            s.log_start = match &s.spec.output {
                Output::File(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
                Output::Console => 0,
            };
            match Self::spawn(&s.spec) {
                Ok(pid) => {
                    log::info!("service {}: started, pid {pid}", s.spec.name);
                    s.pid = Some(Pid::from_raw(pid as i32));
                    self.events.push(Event::Started {
                        name: s.spec.name.clone(),
                        pid: pid as i32,
                    });
                }
                Err(e) => {
                    log::error!(
                        "service {}: cannot start {}: {e}",
                        s.spec.name,
                        command_line(&s.spec.argv)
                    );
                    self.events.push(Event::StartFailed {
                        name: s.spec.name.clone(),
                        error: e.to_string(),
                    });
                    s.exits += 1;
                    s.shared_exits.fetch_add(1, Ordering::SeqCst);
                    Self::schedule(&self.backoff, s, now);
                }
            }
        }
    }

    fn schedule(backoff: &Backoff, s: &mut Slot, now: Instant) -> Option<Duration> {
        if s.spec.restart == Restart::Never {
            return None;
        }
        let d = backoff.next(s.delay, now.saturating_duration_since(s.started));
        s.delay = Some(d);
        s.restart_at = Some(now + d);
        Some(d)
    }

    /// Reap every exited child; returns how many.
    pub fn reap(&mut self) -> usize {
        let mut n = 0;
        loop {
            let st = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return n,
                Ok(st) => st,
            };
            let Some(pid) = st.pid() else { return n };
            if !matches!(st, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) {
                continue;
            }
            n += 1;
            let status = describe(&st);
            let now = Instant::now();
            let stopping = self.stopping;
            match self.slots.iter_mut().find(|s| s.pid == Some(pid)) {
                Some(s) => {
                    s.pid = None;
                    s.exits += 1;
                    s.shared_exits.fetch_add(1, Ordering::SeqCst);
                    let up = now.saturating_duration_since(s.started);
                    // Why it ended, in its own words: an unexpected end
                    // (any of a service that should run on, a failure of
                    // a one-shot), not a shutdown.
                    let unexpected = s.spec.restart == Restart::Always
                        || !matches!(st, WaitStatus::Exited(_, 0));
                    let said = match (&s.spec.output, stopping || !unexpected) {
                        (Output::File(log), false) => why_ended::since(log, s.log_start),
                        _ => None,
                    };
                    let restart_in = if stopping {
                        None
                    } else {
                        Self::schedule(&self.backoff, s, now)
                    };
                    match restart_in {
                        Some(d) => log::warn!(
                            "service {} (pid {pid}) ended after {:.1}s: {status}; restart in {:.1}s",
                            s.spec.name,
                            up.as_secs_f64(),
                            d.as_secs_f64()
                        ),
                        None => log::info!(
                            "service {} (pid {pid}) ended after {:.1}s: {status}",
                            s.spec.name,
                            up.as_secs_f64()
                        ),
                    }
                    if let Some(w) = &said {
                        log::error!("{}", crate::wire::console::service_said(&s.spec.name, w));
                    }
                    self.events.push(Event::Exited {
                        name: s.spec.name.clone(),
                        pid: pid.as_raw(),
                        status,
                        restart_in,
                        said,
                    });
                }
                None => {
                    log::debug!("reaped orphan pid {pid}: {status}");
                    self.events.push(Event::Orphan {
                        pid: pid.as_raw(),
                        status,
                    });
                }
            }
        }
    }

    /// Wait for a signal or `timeout`; returns a shutdown request if one came.
    fn wait(&mut self, timeout: Duration) -> Option<PowerAction> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let ms =
            PollTimeout::try_from(timeout.min(Duration::from_secs(60))).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.sfd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, ms);
        let mut req = None;
        while let Ok(Some(si)) = self.sfd.read_signal() {
            let Ok(sig) = Signal::try_from(si.ssi_signo as i32) else {
                continue;
            };
            if sig == Signal::SIGCHLD {
                continue;
            }
            match shutdown_for(sig) {
                Some(a) => {
                    log::info!("received {sig} from pid {}: {a}", si.ssi_pid);
                    req.get_or_insert(a);
                }
                None => log::info!("received {sig}; ignored"),
            }
        }
        req
    }

    /// Run until a shutdown signal, or until `stop` returns true (checked
    /// after every wake-up).
    pub fn run(&mut self, mut stop: impl FnMut(&Supervisor) -> bool) -> LoopEnd {
        loop {
            self.reap();
            self.start_due();
            if stop(self) {
                return LoopEnd::Stopped;
            }
            let now = Instant::now();
            let next = self
                .slots
                .iter()
                .filter_map(|s| s.restart_at)
                .min()
                .map_or(self.tick, |t| {
                    t.saturating_duration_since(now).min(self.tick)
                });
            if let Some(a) = self.wait(next) {
                return LoopEnd::Shutdown(a);
            }
        }
    }

    /// Deliver a shutdown request as if a signal had come (for the power
    /// button watcher, which signals the process instead).
    pub fn request(action: PowerAction) {
        let sig = match action {
            PowerAction::PowerOff => Signal::SIGUSR2,
            PowerAction::Reboot => Signal::SIGUSR1,
        };
        let _ = kill(nix::unistd::getpid(), sig);
    }

    /// Stop services in reverse start order: SIGTERM to the service's
    /// process group, wait up to its stop_timeout, then SIGKILL.
    pub fn stop_all(&mut self) {
        self.stopping = true;
        for i in (0..self.slots.len()).rev() {
            let (Some(pid), name, grace) = (
                self.slots[i].pid,
                self.slots[i].spec.name.clone(),
                self.slots[i].spec.stop_timeout,
            ) else {
                continue;
            };
            log::info!("stopping {name} (pid {pid})");
            let _ = killpg(pid, Signal::SIGTERM).or_else(|_| kill(pid, Signal::SIGTERM));
            if !self.wait_gone(i, grace) {
                log::warn!(
                    "{name} (pid {pid}) ignored SIGTERM for {:.1}s; SIGKILL",
                    grace.as_secs_f64()
                );
                let _ = killpg(pid, Signal::SIGKILL).or_else(|_| kill(pid, Signal::SIGKILL));
                self.wait_gone(i, Duration::from_secs(5));
            }
        }
    }

    fn wait_gone(&mut self, i: usize, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        loop {
            self.reap();
            if self.slots[i].pid.is_none() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            // Woken by SIGCHLD; shutdown signals are already being handled.
            let _ = self.wait(left.min(Duration::from_millis(200)));
        }
    }

    /// PID 1 only: SIGTERM every remaining process, wait up to `grace`,
    /// SIGKILL the rest, reap. Never call this outside PID 1: kill(-1)
    /// would reach every process the caller may signal.
    pub fn kill_everything(&mut self, grace: Duration) {
        if nix::unistd::getpid().as_raw() != 1 {
            return;
        }
        let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            self.reap();
            if matches!(
                waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)),
                Err(nix::Error::ECHILD)
            ) {
                return;
            }
            let _ = self.wait(Duration::from_millis(200));
        }
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(100));
        self.reap();
    }
}

/// Open a service's log for appending, readable by root only (0600): a
/// new one is created so, an older one has its mode put right.
fn open_log(path: &std::path::Path) -> Result<std::fs::File, PathError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_MODE)
        .open(path)
        .with_path("open log file", path)?;
    f.set_permissions(std::fs::Permissions::from_mode(LOG_MODE))
        .with_path("chmod log file", path)?;
    Ok(f)
}

/// Mode of the services' log files.
const LOG_MODE: u32 = 0o600;

#[cfg(test)]
mod tests;
