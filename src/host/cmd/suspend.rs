//! `b2d suspend`: save a running machine's state to its directory and end
//! its QEMU; `b2d up` resumes it (see [`crate::host::suspend`]).

use super::Output;
use crate::host::store::{MachineError, Store};
use crate::host::suspend::{self, SuspendError};
use crate::host::vm::{self, QemuError};

#[derive(Debug, thiserror::Error)]
pub enum SuspendCmdError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error(transparent)]
    Qemu(#[from] QemuError),
    #[error(transparent)]
    Suspend(#[from] SuspendError),
}

/// `b2d suspend NAME`.
pub fn suspend_named(store: &Store, name: &str, exe: &str) -> Result<Output, SuspendCmdError> {
    let m = store.open(name)?;
    let _lock = m.lock()?;
    if vm::running_pid(&m).is_none() {
        return Err(SuspendError::NotRunning(m.name).into());
    }
    let done = suspend::suspend(&m, &vm::find()?)?;
    use std::os::unix::fs::MetadataExt;
    // What the sparse RAM file takes on the disk, not its length.
    let ram = std::fs::metadata(m.suspend_ram()).map_or(0, |md| md.blocks() * 512);
    Ok(Output::stderr_line(format!(
        "Machine \"{name}\" suspended in {:.1} s ({} MiB of state): `{}` resumes it.",
        done.secs,
        (done.saved.state_size + ram) >> 20,
        crate::host::ui::hints::verb(exe, "up", name)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_machine_is_not_suspended() {
        let t = tempfile::tempdir().unwrap();
        let store = Store {
            root: t.path().into(),
        };
        crate::host::store::saved_sample(&store);
        let e = suspend_named(&store, "dev", "b2d").unwrap_err();
        assert_eq!(
            e.to_string(),
            "machine \"dev\" is not running: there is nothing to suspend"
        );
        let m = store.open("dev").unwrap();
        assert!(!crate::host::suspend::saved::is_suspended(&m));
    }
}
