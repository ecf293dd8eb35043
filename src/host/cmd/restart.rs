//! `b2d restart`: `b2d stop` (the ACPI power button, killed after the
//! timeout; a suspended machine is resumed to shut down cleanly), then
//! `b2d up` with the machine's settings as they are. The disk, and with
//! it every image, container and volume, is kept.

use super::lifecycle::{self, Stopped};
use super::up::{self, Outcome, UpError, UpOptions};
use super::{Context, Output};
use crate::host::store::{Machine, MachineError, Store, DEFAULT_NAME};
use crate::host::ui::progress::Sink;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error(transparent)]
    Up(#[from] UpError),
}

/// What a restart did: how the machine stopped, and how it came up.
#[derive(Debug)]
pub struct Restarted {
    pub machine: Machine,
    pub stopped: Stopped,
    pub outcome: Outcome,
}

/// `b2d restart [NAME]`.
#[derive(Debug, Clone, clap::Args)]
pub struct RestartArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
    /// Seconds to wait for the guest to power off.
    #[arg(long, default_value_t = 90)]
    pub stop_timeout: u64,
    /// Seconds to wait for the guest to be ready again.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

/// `b2d restart NAME`: progress on the terminal while it works; how it
/// stopped, then what `up` says.
pub fn run(store: &Store, args: RestartArgs, cx: &mut Context) -> Result<Output, RestartError> {
    let o = UpOptions {
        name: args.name,
        timeout: Duration::from_secs(args.timeout),
        home: cx.home.clone(),
        exe: cx.program().map_err(UpError::from)?,
        ..Default::default()
    };
    let stop_timeout = Duration::from_secs(args.stop_timeout);
    let done = restart(store, &o, stop_timeout, cx.term.progress().as_mut())?;
    Ok(done.render(&cx.exe))
}

/// Stop machine `o.name` (which must exist: a restart never creates
/// one), then bring it up with `o`.
pub fn restart(
    store: &Store,
    o: &UpOptions,
    stop_timeout: Duration,
    sink: &mut dyn Sink,
) -> Result<Restarted, RestartError> {
    let stopped = lifecycle::stop_by_name(store, &o.name, stop_timeout)?;
    let (machine, outcome) = up::up(store, o, sink)?;
    Ok(Restarted {
        machine,
        stopped,
        outcome,
    })
}

impl Restarted {
    /// How it stopped, then what `up` says.
    pub fn render(&self, exe: &str) -> Output {
        let stop = self.stopped.render(&self.machine.name);
        let up = up::render(&self.machine, &self.outcome, exe);
        Output {
            stderr: stop.stderr + &up.stderr,
            ..up
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_machine_is_not_created_by_a_restart() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path().join("machines"));
        let o = UpOptions {
            name: "nope".into(),
            ..Default::default()
        };
        let e = restart(&store, &o, Duration::from_secs(1), &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no machine named \"nope\""), "{e}");
        assert!(e.contains("b2d up nope"), "{e}");
        assert!(!store.exists("nope"));
    }
}
