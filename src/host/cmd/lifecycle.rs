//! What `b2d stop` and `b2d rm` do (their verbs are [`super::stop`] and
//! [`super::rm`]; `restart`, `swarm rm` and a resume use it too): ACPI
//! power-down with a deadline, then a kill; removal only of a stopped
//! machine unless forced.

use super::{Confirm, Output};
use crate::host::shares;
use crate::host::store::{self, io_err, Machine, MachineError, Store};
use crate::host::suspend::{self, NotResumed};
use crate::host::{suspend::saved, vm, vm::accel};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// It was not running.
    Already,
    /// The guest shut itself down after the power button.
    Clean,
    /// It did not power off in time (or QMP failed) and was killed.
    Killed { why: String },
    /// It was suspended and its state could not be loaded to shut it
    /// down: the state is gone, the disk is as the suspend left it.
    Discarded { why: String },
}

impl Stopped {
    /// What `b2d stop` says about machine `name`.
    pub fn render(&self, name: &str) -> Output {
        Output::stderr_line(match self {
            Stopped::Already => format!("Machine \"{name}\" is not running."),
            Stopped::Clean => format!("Machine \"{name}\" stopped."),
            Stopped::Killed { why } => format!("Machine \"{name}\" killed: {why}."),
            Stopped::Discarded { why } => format!(
                "Machine \"{name}\" stopped: its suspended state could not be loaded to shut it down ({why}), so it was dropped; the disk is as the suspend left it."
            ),
        })
    }
}

/// Press the power button, wait up to `timeout` for QEMU to exit, then
/// kill it. The caller holds the machine's lock.
pub fn stop(m: &Machine, timeout: Duration) -> Stopped {
    if vm::running_pid(m).is_none() {
        vm::cleanup(m);
        return Stopped::Already;
    }
    let why = match vm::powerdown(m) {
        Ok(()) if vm::wait_gone(m, timeout) => {
            vm::cleanup(m);
            return Stopped::Clean;
        }
        Ok(()) => format!("no power-off within {} s", timeout.as_secs()),
        Err(e) => format!("QMP power button failed: {e}"),
    };
    vm::stop_now(m);
    Stopped::Killed { why }
}

/// [`stop`] of machine `name`, under its lock. A suspended machine is
/// resumed to be shut down cleanly.
pub fn stop_by_name(store: &Store, name: &str, timeout: Duration) -> Result<Stopped, MachineError> {
    let m = store.open(name)?;
    let _lock = m.lock()?;
    if vm::running_pid(&m).is_none() && saved::is_suspended(&m) {
        return Ok(stop_suspended(&m, timeout));
    }
    Ok(stop(&m, timeout))
}

/// Why a suspended machine could not be resumed to be stopped.
#[derive(Debug, thiserror::Error)]
enum NoResume {
    #[error(transparent)]
    Saved(#[from] saved::Unusable),
    #[error(transparent)]
    Qemu(#[from] vm::QemuError),
    #[error(transparent)]
    Shares(#[from] shares::ShareError),
    #[error(transparent)]
    Resume(#[from] NotResumed),
}

fn stop_suspended(m: &Machine, timeout: Duration) -> Stopped {
    let resumed = || -> Result<(), NoResume> {
        let s = saved::read(m).unwrap_or(Err(saved::Unusable::Unreadable {
            path: m.suspend_meta(),
            why: "gone".into(),
        }))?;
        let qemu_bin = vm::find()?;
        let plan = shares::plan_for(m)?;
        Ok(suspend::resume(
            m,
            &s,
            &qemu_bin,
            accel::choose(&m.iso()),
            &plan,
        )?)
    };
    match resumed() {
        Ok(()) => stop(m, timeout),
        Err(why) => {
            saved::discard(m);
            Stopped::Discarded {
                why: why.to_string(),
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RmError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error("machine \"{name}\" is running: `b2d stop {name}` first, or `b2d rm -f {name}` to kill and remove it")]
    Running { name: String },
    #[error("not removing machine \"{name}\" without confirmation: pass -f to remove it and its disk (`b2d rm -f {name}`)")]
    Unconfirmed { name: String },
    #[error("machine \"{name}\" not removed (`b2d rm -f {name}` removes it without asking)")]
    Declined { name: String },
    #[error("machine \"{name}\" not removed: the QEMU its pid file {} names is still running 10 s after a kill", pid_file.display())]
    Unkillable { name: String, pid_file: PathBuf },
}

/// The question `rm` asks before removing `m`.
pub fn question(m: &Machine) -> String {
    format!(
        "Remove machine \"{}\" and its {} disk with all its images, containers and volumes? [y/N] ",
        m.name,
        crate::disk::size::gib(m.config.disk_size)
    )
}

/// Whether a reply to [`question`] is a yes.
pub fn is_yes(reply: &str) -> bool {
    matches!(reply.trim(), "y" | "Y" | "yes")
}

/// Remove machine `name`. A running machine needs `force` (it is killed
/// first, no clean shutdown: its disk is going anyway); a stopped one
/// needs `force` or a yes from `confirm`. A machine whose config cannot
/// be used goes with `force` alone.
pub fn rm(store: &Store, name: &str, force: bool, confirm: Confirm) -> Result<Output, RmError> {
    let m = match store.open(name) {
        Ok(m) => m,
        Err(MachineError::Broken { .. }) if force => return rm_broken(store, name),
        Err(e) => return Err(e.into()),
    };
    let lock = m.lock()?;
    if vm::running_pid(&m).is_some() {
        if !force {
            return Err(RmError::Running { name: m.name });
        }
        vm::stop_now(&m);
    } else if !force {
        match confirm {
            Confirm::NoTerminal => return Err(RmError::Unconfirmed { name: m.name }),
            Confirm::Ask(ask) => {
                if !is_yes(&ask(&question(&m))) {
                    return Err(RmError::Declined { name: m.name });
                }
            }
        }
    }
    let network = m.config.network.as_ref().map(|a| a.name.clone());
    let mut said = remove(store, name, &m.dir, lock)?;
    // The network's other machines forget it.
    if let Some(net) = network {
        for line in crate::host::vm::peers::announce(store, &net) {
            said.stderr += &format!("b2d: {line}\n");
        }
    }
    Ok(said)
}

/// `rm -f` of a machine whose config cannot be read: without it, its QEMU
/// is known by the pid file alone, checked against the process's command
/// line as ever (a reused pid is not killed).
fn rm_broken(store: &Store, name: &str) -> Result<Output, RmError> {
    let dir = store.dir(name);
    let lock = store::lock_dir(name, &dir)?;
    let pid_file = store::pid_file_in(&dir);
    if !vm::kill_of(&pid_file) {
        return Err(RmError::Unkillable {
            name: name.into(),
            pid_file,
        });
    }
    remove(store, name, &dir, lock)
}

/// Remove the directory of machine `name`, whose lock the caller passes
/// in, and its docker context.
fn remove(
    store: &Store,
    name: &str,
    dir: &std::path::Path,
    lock: nix::fcntl::Flock<std::fs::File>,
) -> Result<Output, RmError> {
    // Rename first so a half-removed machine is never listed or booted.
    let doomed = store.root.join(format!(".{name}.removing"));
    std::fs::rename(dir, &doomed).map_err(io_err("rename for removal", dir))?;
    drop(lock);
    std::fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))?;
    let mut said = Output::stderr_line(format!("Machine \"{name}\" removed."));
    if let Some(cfg) = crate::host::client::context::config_dir() {
        if let Err(e) =
            crate::host::client::context::remove(&cfg, &crate::host::client::context::name(name))
        {
            said.stderr += &format!("b2d: {e}\n");
        }
    }
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(store: &Store) -> Machine {
        let m = crate::host::store::saved_sample(store);
        std::fs::write(m.disk(), b"data").unwrap();
        m
    }

    #[test]
    fn stopping_a_stopped_machine_says_so_and_clears_stale_files() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        let m = machine(&store);
        std::fs::write(m.pid_file(), "999999999").unwrap();
        assert_eq!(stop(&m, Duration::from_secs(1)), Stopped::Already);
        assert!(!m.pid_file().exists());
    }

    #[test]
    fn rm_asks_and_keeps_the_machine_on_no() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        let m = machine(&store);
        let mut asked = Vec::new();
        let mut no = |q: &str| {
            asked.push(q.to_string());
            "n\n".to_string()
        };
        let e = rm(&store, "dev", false, Confirm::Ask(&mut no))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not removed"), "{e}");
        assert_eq!(
            asked,
            ["Remove machine \"dev\" and its 20 GiB disk with all its images, containers and volumes? [y/N] "]
        );
        assert_eq!(std::fs::read(m.disk()).unwrap(), b"data");
        let said = rm(&store, "dev", false, Confirm::Ask(&mut |_| "y\n".into())).unwrap();
        assert_eq!(
            (said.stdout.as_str(), said.stderr.as_str()),
            ("", "Machine \"dev\" removed.\n")
        );
        assert!(!m.dir.exists());
        assert!(std::fs::read_dir(t.path()).unwrap().next().is_none());
        let e = rm(&store, "dev", true, Confirm::NoTerminal)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no machine named \"dev\""), "{e}");
    }

    #[test]
    fn without_a_terminal_only_force_removes() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        let m = machine(&store);
        let e = rm(&store, "dev", false, Confirm::NoTerminal)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pass -f"), "{e}");
        assert!(e.contains("`b2d rm -f dev`"), "{e}");
        assert!(m.disk().exists());
        rm(&store, "dev", true, Confirm::NoTerminal).unwrap();
        assert!(!m.dir.exists());
    }

    #[test]
    fn only_yes_is_yes() {
        for y in ["y", "Y", "yes", " yes\n"] {
            assert!(is_yes(y), "{y:?}");
        }
        for n in ["", "n", "no", "YES", "yess"] {
            assert!(!is_yes(n), "{n:?}");
        }
    }

    #[test]
    fn stop_says_what_happened() {
        assert_eq!(
            Stopped::Already.render("dev").stderr,
            "Machine \"dev\" is not running.\n"
        );
        assert_eq!(
            Stopped::Clean.render("dev").stderr,
            "Machine \"dev\" stopped.\n"
        );
        let killed = Stopped::Killed {
            why: "no power-off within 90 s".into(),
        };
        assert_eq!(
            killed.render("dev").stderr,
            "Machine \"dev\" killed: no power-off within 90 s.\n"
        );
    }

    #[test]
    fn a_busy_machine_is_not_removed() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        let m = machine(&store);
        let _held = m.lock().unwrap();
        let e = rm(&store, "dev", true, Confirm::NoTerminal)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is busy"), "{e}");
        assert!(m.disk().exists());
    }
}
