//! One machine of the real `b2d` binary, as a user drives it: a private
//! machine store (XDG_DATA_HOME) and HOME, the verbs run as commands, and
//! the machine killed and removed when the test ends, pass or fail.

use crate::fixture::b2d_bin;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;
use test_support::MachineStore;

/// Longest a `b2d` verb may run in a test: `up --timeout 400` and then some.
pub const B2D_LIMIT: Duration = Duration::from_secs(480);
/// Longest a test's shell script (docker commands, mostly) may run.
pub const SCRIPT_LIMIT: Duration = Duration::from_secs(240);

pub struct Machine {
    pub dir: MachineStore,
    pub name: &'static str,
}

impl Machine {
    pub fn new(name: &'static str) -> Machine {
        Machine {
            dir: MachineStore::new(),
            name,
        }
    }

    pub fn machine_dir(&self) -> PathBuf {
        self.dir.machine_dir(self.name)
    }

    pub fn env(&self, c: &mut Command) {
        self.dir.env(c).env("B2D", b2d_bin());
    }

    /// `b2d ARGS`, killed (failing the test) after [`B2D_LIMIT`].
    pub fn b2d(&self, args: &[&str]) -> Output {
        self.b2d_env(args, &[])
    }

    /// `b2d ARGS`, killed (failing the test) after `limit` (several
    /// machines booting at once under TCG take longer than one).
    pub fn b2d_within(&self, args: &[&str], limit: Duration) -> Output {
        let mut c = Command::new(b2d_bin());
        c.args(args);
        self.env(&mut c);
        self.within(&mut c, limit)
    }

    /// [`Machine::b2d`] with variables added to its environment.
    pub fn b2d_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut c = Command::new(b2d_bin());
        c.args(args);
        self.env(&mut c);
        c.envs(vars.iter().copied());
        self.within(&mut c, B2D_LIMIT)
    }

    /// A bash script with `$B2D` naming the binary, killed (failing the
    /// test) after [`SCRIPT_LIMIT`].
    pub fn bash(&self, script: &str) -> Output {
        let mut c = Command::new("bash");
        c.args(["-euo", "pipefail", "-c", script]);
        self.env(&mut c);
        self.within(&mut c, SCRIPT_LIMIT)
    }

    fn within(&self, c: &mut Command, limit: Duration) -> Output {
        test_support::output_within(c, limit, || self.evidence())
    }

    /// The console's and the host agent's last lines, for a failure.
    pub fn evidence(&self) -> String {
        let agent =
            std::fs::read_to_string(self.machine_dir().join("agent.log")).unwrap_or_default();
        format!(
            "console:\n{}\nagent.log:\n{}",
            self.serial_tail(),
            b2d::host::vm::console::tail(&agent, 20)
        )
    }

    pub fn serial_tail(&self) -> String {
        let log = b2d::host::vm::console::read_log(&self.machine_dir().join("serial.log"));
        let tail = b2d::host::vm::console::tail(&log, 30);
        match b2d::host::vm::console::oops(&log, 40) {
            Some(oops) => format!("{oops}\n…\n{tail}"),
            None => tail,
        }
    }

    /// stdout of a command that must succeed (the console tail is shown
    /// when it did not).
    pub fn ok(&self, what: &str, out: Output) -> String {
        if !out.status.success() {
            eprintln!("console:\n{}", self.serial_tail());
        }
        test_support::assert_ok(what, &out)
    }

    /// stderr of a command that must succeed (what `b2d` says to people).
    pub fn said(&self, what: &str, out: Output) -> String {
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        self.ok(what, out);
        said
    }

    /// stderr of a command that must fail.
    pub fn fails(&self, what: &str, out: Output) -> String {
        test_support::assert_fails(what, &out)
    }

    pub fn status(&self) -> serde_json::Value {
        let s = self.ok("status", self.b2d(&["status", self.name, "--json"]));
        serde_json::from_str(&s).unwrap()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.b2d(&["rm", "-f", self.name]);
    }
}
