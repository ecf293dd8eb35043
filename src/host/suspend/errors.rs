//! What goes wrong in a suspend or a resume: [`SuspendError`] (the
//! machine keeps running, or its state could not be saved) and
//! [`NotResumed`] (it boots cold instead), each naming the step.

use super::saved::Unusable;
use crate::errors::PathError;
use crate::host::vm;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SuspendError {
    #[error("machine \"{0}\" is not running: there is nothing to suspend")]
    NotRunning(String),
    #[error("machine \"{0}\" is still booting: suspend it once `b2d up {0}` has finished")]
    Booting(String),
    #[error("machine \"{name}\" not suspended: {why}; it keeps running")]
    Refused {
        name: String,
        #[source]
        why: Refusal,
    },
    #[error("machine \"{name}\": saving its state failed: {why}{}", undoing(undo))]
    Save {
        name: String,
        #[source]
        why: Step,
        /// What failed in putting the machine back as it was.
        undo: Vec<Step>,
    },
    #[error("machine \"{name}\": saving its state failed: {why}; the next `b2d up` boots it cold")]
    Commit {
        name: String,
        #[source]
        why: PathError,
    },
}

fn undoing(undo: &[Step]) -> String {
    if undo.is_empty() {
        return String::new();
    }
    let said: Vec<String> = undo.iter().map(ToString::to_string).collect();
    format!(" (and undoing it: {})", said.join("; "))
}

/// Why a running machine was not suspended (it keeps running as it was).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("its RAM is not in a memfd b2d can save (it was booted by an older b2d): `b2d stop {0}` and `b2d up {0}` once")]
    NotInMemfd(String),
    #[error("no control port ({0}); it was booted by an older b2d")]
    NoControlPort(#[source] io::Error),
    #[error("the guest did not get ready: {0}")]
    GuestNotReady(#[source] io::Error),
    /// The guest's own answer.
    #[error("{0}")]
    Guest(String),
    #[error(transparent)]
    Step(#[from] Step),
}

/// A step of a save or a resume that failed.
#[derive(Debug, thiserror::Error)]
pub enum Step {
    /// QMP or the control port could not be reached, or QEMU refused a
    /// command (in its words).
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("the guest did not release its virtiofs devices in 20 s")]
    Unplug,
    #[error("{machine}: {source}")]
    Plug {
        machine: String,
        #[source]
        source: io::Error,
    },
    #[error("QEMU cannot leave the RAM out of the state: {0}")]
    IgnoreShared(#[source] io::Error),
    /// The migration ended without completing, in QEMU's words.
    #[error("{0}")]
    Migration(String),
    #[error("copying the guest RAM to {}: {source}", path.display())]
    Ram {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    File(#[from] PathError),
    #[error("cont: {0}")]
    Cont(#[source] io::Error),
    /// The guest's own answer to `resumed`.
    #[error("{0}")]
    Guest(String),
}

/// Why a resume gave way to a cold boot.
#[derive(Debug, thiserror::Error)]
pub enum NotResumed {
    /// The state cannot be used; it was discarded. The disk is as the
    /// guest left it before the save.
    #[error(transparent)]
    Unusable(Unresumable),
    /// QEMU could not be started at all (e.g. a port is taken).
    #[error(transparent)]
    Start(vm::QemuError),
}

/// Why a saved state could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Unresumable {
    #[error(transparent)]
    State(#[from] Unusable),
    #[error("the saved RAM is {saved} MiB, and the machine has {now} MiB")]
    RamSize { saved: u64, now: u32 },
    #[error("no memory for the guest RAM: {0}")]
    NoMemory(#[source] io::Error),
    /// QEMU started, and ended before it took the state.
    #[error(transparent)]
    Qemu(vm::QemuError),
    #[error(transparent)]
    Step(#[from] Step),
    #[error("QEMU is {0} after loading the state")]
    Status(String),
    /// The last line QEMU logged.
    #[error("QEMU could not load the state: {0}")]
    Load(String),
}
