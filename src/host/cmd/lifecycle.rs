//! `b2d stop` and `b2d rm`: ACPI power-down with a deadline, then a kill;
//! removal only of a stopped machine unless forced.

use crate::host::machine::{io_err, Machine, Store};
use crate::host::qemu;
use anyhow::{bail, Result};
use std::time::Duration;

#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// It was not running.
    Already,
    /// The guest shut itself down after the power button.
    Clean,
    /// It did not power off in time (or QMP failed) and was killed.
    Killed { why: String },
}

/// Press the power button, wait up to `timeout` for QEMU to exit, then
/// kill it. The caller holds the machine's lock.
pub fn stop(m: &Machine, timeout: Duration) -> Stopped {
    if qemu::running_pid(m).is_none() {
        qemu::cleanup(m);
        return Stopped::Already;
    }
    let why = match qemu::powerdown(m) {
        Ok(()) if qemu::wait_gone(m, timeout) => {
            qemu::cleanup(m);
            return Stopped::Clean;
        }
        Ok(()) => format!("no power-off within {} s", timeout.as_secs()),
        Err(e) => format!("QMP power button failed: {e}"),
    };
    qemu::stop_now(m);
    Stopped::Killed { why }
}

/// Remove machine `name`. A running machine needs `force` (it is killed
/// first, no clean shutdown: its disk is going anyway); a stopped one
/// needs `force` or `confirm` to say yes.
pub fn rm(
    store: &Store,
    name: &str,
    force: bool,
    confirm: impl FnOnce(&Machine) -> bool,
) -> Result<()> {
    let m = store.open(name)?;
    let lock = m.lock()?;
    if qemu::running_pid(&m).is_some() {
        if !force {
            bail!(
                "machine {name:?} is running: `b2d stop {name}` first, or `b2d rm -f {name}` to kill and remove it"
            );
        }
        qemu::stop_now(&m);
    } else if !force && !confirm(&m) {
        bail!("machine {name:?} not removed");
    }
    // Rename first so a half-removed machine is never listed or booted.
    let doomed = store.root.join(format!(".{name}.removing"));
    std::fs::rename(&m.dir, &doomed).map_err(io_err("renaming for removal", &m.dir))?;
    drop(lock);
    std::fs::remove_dir_all(&doomed).map_err(io_err("removing", &doomed))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::machine::sample;

    fn machine(store: &Store) -> Machine {
        let m = sample(store.dir("dev"));
        std::fs::create_dir_all(&m.dir).unwrap();
        m.save_config().unwrap();
        std::fs::write(m.disk(), b"data").unwrap();
        m
    }

    #[test]
    fn stopping_a_stopped_machine_says_so_and_clears_stale_files() {
        let t = tempfile::tempdir().unwrap();
        let store = Store {
            root: t.path().into(),
        };
        let m = machine(&store);
        std::fs::write(m.pid_file(), "999999999").unwrap();
        assert_eq!(stop(&m, Duration::from_secs(1)), Stopped::Already);
        assert!(!m.pid_file().exists());
    }

    #[test]
    fn rm_asks_and_keeps_the_machine_on_no() {
        let t = tempfile::tempdir().unwrap();
        let store = Store {
            root: t.path().into(),
        };
        let m = machine(&store);
        let e = rm(&store, "dev", false, |_| false).unwrap_err().to_string();
        assert!(e.contains("not removed"), "{e}");
        assert_eq!(std::fs::read(m.disk()).unwrap(), b"data");
        rm(&store, "dev", false, |_| true).unwrap();
        assert!(!m.dir.exists());
        assert!(std::fs::read_dir(t.path()).unwrap().next().is_none());
        let e = rm(&store, "dev", true, |_| true).unwrap_err().to_string();
        assert!(e.contains("no machine named \"dev\""), "{e}");
    }

    #[test]
    fn a_busy_machine_is_not_removed() {
        let t = tempfile::tempdir().unwrap();
        let store = Store {
            root: t.path().into(),
        };
        let m = machine(&store);
        let _held = m.lock().unwrap();
        let e = rm(&store, "dev", true, |_| true).unwrap_err().to_string();
        assert!(e.contains("is busy"), "{e}");
        assert!(m.disk().exists());
    }
}
