//! The one seam to the kernel: mounts, device nodes, module loading, block
//! ioctls, swap, hostname, power-off, and running external tools.
//!
//! Guest logic takes `&dyn Sys`, so boot and disk sequences are unit-tested
//! with the recording fake (`fake.rs`, compiled for tests only), without
//! root or a kernel. [`RealSys`] (`linux.rs`) is the kernel itself.
//! External programs are run through [`run_tool`] (`run.rs`), whose error
//! says which command failed and how.

#[cfg(test)]
mod fake;
mod linux;
pub mod run;

#[cfg(test)]
pub use fake::{Call, FakeSys};
pub use linux::RealSys;
pub use run::{run_tool, run_tool_accepting, CommandLine, ExitStatus, ToolError};

use std::io;
use std::path::{Path, PathBuf};

pub use nix::mount::MsFlags;

/// Output of an external command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdOutput {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// How a program run under a time limit ([`Sys::run_bounded`]) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounded {
    /// It ended by itself: its exit code, or the signal that ended it.
    Ended {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// It outlived the limit: it and everything it started were killed.
    Killed,
}

/// How to end the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    PowerOff,
    Reboot,
}

/// `power off` / `reboot`, as the console says it.
impl std::fmt::Display for PowerAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PowerAction::PowerOff => "power off",
            PowerAction::Reboot => "reboot",
        })
    }
}

/// Every kernel interaction the guest agent makes.
pub trait Sys: Send + Sync {
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()>;
    fn umount(&self, target: &Path, detach: bool) -> io::Result<()>;
    /// Create a character (`block == false`) or block device node.
    fn mknod(&self, path: &Path, block: bool, mode: u32, major: u64, minor: u64) -> io::Result<()>;
    /// Load a kernel module from its file; EEXIST is reported as an error
    /// with kind `AlreadyExists` and callers treat it as success.
    fn finit_module(&self, file: &Path, params: &str) -> io::Result<()>;
    fn sethostname(&self, name: &str) -> io::Result<()>;
    fn swapon(&self, dev: &Path) -> io::Result<()>;
    fn swapoff(&self, dev: &Path) -> io::Result<()>;
    fn sync(&self);
    /// Size in bytes of a block device or regular file.
    fn device_size(&self, dev: &Path) -> io::Result<u64>;
    /// Ask the kernel to re-read a disk's partition table (BLKRRPART).
    fn reread_partitions(&self, dev: &Path) -> io::Result<()>;
    /// Tell the kernel about one partition (BLKPG_ADD_PARTITION), for
    /// kernels that do not parse the table themselves; byte offsets.
    fn add_partition(&self, dev: &Path, number: u32, start: u64, len: u64) -> io::Result<()>;
    /// Attach `file` read-only to a free loop device; returns its node.
    fn loop_attach(&self, file: &Path) -> io::Result<PathBuf>;
    /// Make `new_root` the root: chdir, move-mount it over `/`, chroot.
    fn switch_root(&self, new_root: &Path) -> io::Result<()>;
    /// Run a program to completion, capturing its output. The error is
    /// the bare spawn error: use [`run_tool`], which names the command.
    fn run(&self, program: &str, args: &[&str]) -> io::Result<CmdOutput>;
    /// Run a program in a process group of its own, its output appended
    /// to `log`, for at most `limit`; one that outlives it is killed with
    /// its whole group (what it forked included). What it leaves running
    /// after ending in time is left alone.
    fn run_bounded(
        &self,
        program: &str,
        args: &[&str],
        log: &Path,
        limit: std::time::Duration,
    ) -> io::Result<Bounded>;
    /// Start a program and leave it: PID 1's supervisor reaps it. `env`
    /// is added to the agent's environment.
    fn spawn(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> io::Result<()>;
    /// The wall clock (CLOCK_REALTIME), ms since the Unix epoch.
    fn clock_ms(&self) -> io::Result<u64>;
    /// The hardware clock `rtc` (`/sys/class/rtc/rtc0`), whole seconds
    /// since the Unix epoch (it keeps UTC).
    fn rtc_seconds(&self, rtc: &Path) -> io::Result<u64>;
    /// Step the wall clock (CLOCK_REALTIME) to `unix_ms`.
    fn set_clock(&self, unix_ms: u64) -> io::Result<()>;
    fn power(&self, action: PowerAction) -> io::Result<()>;
}

/// Whether a module file is compressed, judged by its name as kmod does.
pub fn is_compressed_module(file: &Path) -> bool {
    let name = file.to_string_lossy();
    [".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_modules_are_recognised_by_name() {
        assert!(is_compressed_module(Path::new(
            "/lib/modules/6.1/ext4.ko.xz"
        )));
        assert!(is_compressed_module(Path::new("crc32c.ko.zst")));
        assert!(!is_compressed_module(Path::new("ext4.ko")));
    }

    #[test]
    fn power_actions_read_as_words() {
        assert_eq!(PowerAction::PowerOff.to_string(), "power off");
        assert_eq!(PowerAction::Reboot.to_string(), "reboot");
    }
}
