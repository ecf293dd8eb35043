//! `b2d kill`: a hard stop, as pulling the plug. QEMU is killed at once,
//! with no ACPI power button and no wait (the guest's filesystem recovers
//! as after a power cut; `b2d stop` is the clean way). A suspended
//! machine's saved state is dropped: its disk is as the suspend left it.

use super::{Context, Output};
use crate::host::store::{MachineError, Store, DEFAULT_NAME};
use crate::host::{suspend::saved, vm};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Killed {
    /// Its QEMU (this pid) was killed.
    Killed { pid: u32 },
    /// It was suspended: the saved state is gone.
    Dropped,
    /// Nothing ran.
    NotRunning,
}

impl Killed {
    pub fn render(&self, name: &str) -> Output {
        Output::stderr_line(match self {
            Killed::Killed { pid } => format!("Machine \"{name}\" killed (QEMU pid {pid})."),
            Killed::Dropped => format!(
                "Machine \"{name}\" was suspended: its saved state is dropped; the disk is as the suspend left it."
            ),
            Killed::NotRunning => format!("Machine \"{name}\" is not running."),
        })
    }
}

/// `b2d kill [NAME]`.
#[derive(Debug, Clone, clap::Args)]
pub struct KillArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
}

/// `b2d kill NAME`: what happened, on stderr.
pub fn run(store: &Store, args: KillArgs, _cx: &mut Context) -> Result<Output, MachineError> {
    Ok(kill(store, &args.name)?.render(&args.name))
}

/// Kill machine `name`'s QEMU (or drop its saved state), under its lock.
pub fn kill(store: &Store, name: &str) -> Result<Killed, MachineError> {
    let m = store.open(name)?;
    let _lock = m.lock()?;
    if let Some(pid) = vm::running_pid(&m) {
        vm::stop_now(&m);
        return Ok(Killed::Killed { pid });
    }
    vm::cleanup(&m);
    if saved::is_suspended(&m) {
        saved::discard(&m);
        return Ok(Killed::Dropped);
    }
    Ok(Killed::NotRunning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_machine_is_left_and_a_suspended_one_loses_its_state() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        let m = crate::host::store::saved_sample(&store);
        std::fs::write(m.pid_file(), "999999999").unwrap();
        assert_eq!(kill(&store, "dev").unwrap(), Killed::NotRunning);
        assert!(!m.pid_file().exists(), "a stale pid file is cleared");
        std::fs::write(m.suspend_meta(), "{}").unwrap();
        assert!(saved::is_suspended(&m));
        assert_eq!(kill(&store, "dev").unwrap(), Killed::Dropped);
        assert!(!saved::is_suspended(&m));
        assert_eq!(
            Killed::Killed { pid: 7 }.render("dev").stderr,
            "Machine \"dev\" killed (QEMU pid 7).\n"
        );
        let e = kill(&store, "nope").unwrap_err().to_string();
        assert!(e.contains("no machine named \"nope\""), "{e}");
        let _held = m.lock().unwrap();
        let e = kill(&store, "dev").unwrap_err().to_string();
        assert!(e.contains("is busy"), "{e}");
    }
}
