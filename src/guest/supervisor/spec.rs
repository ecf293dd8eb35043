//! What the supervisor runs and reports: service specs, restart backoff,
//! events, and exit statuses in words.

use crate::sys::PowerAction;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use std::path::PathBuf;
use std::time::Duration;

/// What happens when a service exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Restart with backoff, forever.
    Always,
    /// One-shot: run once, log the exit.
    Never,
}

/// Where a service's stdout/stderr go (stdin is /dev/null unless Console).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Inherit PID 1's stdio (the console).
    Console,
    /// Append to this file.
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub restart: Restart,
    pub output: Output,
    /// Grace between SIGTERM and SIGKILL at shutdown.
    pub stop_timeout: Duration,
}

impl Service {
    pub fn new(name: &str, argv: &[&str], restart: Restart) -> Service {
        Service {
            name: name.to_string(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            restart,
            output: Output::Console,
            stop_timeout: Duration::from_secs(10),
        }
    }
}

/// Exponential restart backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// A run at least this long resets the delay to `initial`.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// Delay before the next start, given the previous delay and how long
    /// the run that just ended lasted.
    pub fn next(&self, prev: Option<Duration>, uptime: Duration) -> Duration {
        match prev {
            Some(p) if uptime < self.reset_after => (p * 2).min(self.max),
            _ => self.initial.min(self.max),
        }
    }
}

/// Something the supervisor did or saw (kept for status and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started {
        name: String,
        pid: i32,
    },
    StartFailed {
        name: String,
        error: String,
    },
    Exited {
        name: String,
        pid: i32,
        status: String,
        restart_in: Option<Duration>,
        /// Its last words, when it ended unexpectedly and said why.
        said: Option<String>,
    },
    Orphan {
        pid: i32,
        status: String,
    },
}

/// Why the loop returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopEnd {
    /// A shutdown signal arrived.
    Shutdown(PowerAction),
    /// The caller's predicate said stop.
    Stopped,
}

/// Map a signal to the shutdown it asks for: SIGTERM, SIGUSR2 and SIGINT
/// (ctrl-alt-del) power off; SIGUSR1 reboots.
pub fn shutdown_for(sig: Signal) -> Option<PowerAction> {
    match sig {
        Signal::SIGTERM | Signal::SIGUSR2 | Signal::SIGINT => Some(PowerAction::PowerOff),
        Signal::SIGUSR1 => Some(PowerAction::Reboot),
        _ => None,
    }
}

/// How a child ended (or changed state), in words: `exit code 1`,
/// `killed by SIGKILL (core dumped)`, `stopped by SIGSTOP`.
pub fn describe(status: &WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exit code {code}"),
        WaitStatus::Signaled(_, sig, core) => {
            format!(
                "killed by {sig}{}",
                if *core { " (core dumped)" } else { "" }
            )
        }
        WaitStatus::Stopped(_, sig) => format!("stopped by {sig}"),
        WaitStatus::PtraceEvent(_, sig, _) => format!("stopped by {sig} under a tracer"),
        WaitStatus::PtraceSyscall(_) => "stopped at a system call under a tracer".into(),
        WaitStatus::Continued(_) => "continued".into(),
        WaitStatus::StillAlive => "still running".into(),
    }
}
