//! `b2d suspend`: save a running machine's state to its directory and end
//! its QEMU; `b2d up` resumes it (see [`crate::host::suspend`]).

use super::{Context, Output};
use crate::host::store::{MachineError, Store, DEFAULT_NAME};
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

/// `b2d suspend [NAME]`.
#[derive(Debug, Clone, clap::Args)]
pub struct SuspendArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
}

/// `b2d suspend NAME`: how long it took and how much it saved, on stderr.
pub fn run(store: &Store, args: SuspendArgs, cx: &mut Context) -> Result<Output, SuspendCmdError> {
    let (name, exe) = (args.name.as_str(), cx.exe.as_str());
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
    use crate::host::cmd::context::TestTerminal;

    #[test]
    fn a_stopped_machine_is_not_suspended() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        crate::host::store::saved_sample(&store);
        let args = SuspendArgs { name: "dev".into() };
        let e = run(&store, args, &mut TestTerminal::default().context()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "machine \"dev\" is not running: there is nothing to suspend"
        );
        let m = store.open("dev").unwrap();
        assert!(!crate::host::suspend::saved::is_suspended(&m));
    }
}
