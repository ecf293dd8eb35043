//! The verbs of `b2d`, one module each. Every verb has the same shape:
//!
//! - its arguments are one `#[derive(clap::Args)]` struct beside it (e.g.
//!   [`up::UpArgs`]; a verb with sub-verbs, `swarm` or `disk`, has a
//!   `clap::Subcommand` enum of them), which the binary's clap tree
//!   carries as it is and hands over whole. They live here, not in the
//!   binary, because a verb's flags and the checks on them (`--memory`,
//!   `--mount-type`, `--compat`, what `--boot` switches to) are part of
//!   the verb; clap is a dependency of this library anyway;
//! - its entry is `run(store, args, cx)` (`run(args, cx)` for `disk`,
//!   which needs no machine), with the [`Context`] the caller gives it
//!   (how `b2d` is spelled, the user's home and shell, the [`Terminal`]);
//! - it returns an [`Output`]: what to print on stderr and on stdout, and
//!   for `ssh` and `cp` the program to run in b2d's place.
//!
//! `src/bin/b2d.rs` parses, makes the context, calls the verb and prints
//! its output; `completion` alone lives there (it is clap's, over the
//! binary's whole tree). Nothing here writes to the terminal except
//! through the context's [`Terminal`].

pub mod agent;
pub mod boot_phases;
pub mod context;
pub mod cp;
pub mod disk;
pub mod env;
pub mod flags;
pub mod inspect;
pub mod ip;
pub mod json;
pub mod kill;
pub mod lifecycle;
pub mod logs;
pub mod ls;
pub mod output;
pub mod ports;
pub mod restart;
pub mod rm;
pub mod ssh;
pub mod ssh_config;
pub mod status;
pub mod stop;
pub mod suspend;
pub mod swarm;
pub mod template;
pub mod up;
pub mod url;

pub use context::{Confirm, Context, NoProgram, Terminal};
pub use output::{Exec, Output};

use crate::host::store::{Machine, MachineError, Store};
use crate::host::ui::hints;
use crate::host::vm;

/// Errors of the verbs that need a machine, and some of them a running one.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error("machine \"{name}\" is not running: start it with `{up}`")]
    NotRunning { name: String, up: String },
    #[error("machine \"{name}\" has no ready line in {log}: it has not finished a boot (see `b2d logs {name}`)")]
    NoReadyLine { name: String, log: String },
    #[error(transparent)]
    Json(#[from] json::JsonError),
}

/// Machine `name`, which must be running; `exe` spells the `up` command
/// the error suggests (see [`hints::command_name`]).
pub fn running(store: &Store, name: &str, exe: &str) -> Result<Machine, CmdError> {
    let m = store.open(name)?;
    if vm::running_pid(&m).is_none() {
        return Err(CmdError::NotRunning {
            name: m.name,
            up: hints::verb(exe, "up", name),
        });
    }
    Ok(m)
}

/// How a report is printed: for people, or as JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

impl Format {
    /// `--json` given or not.
    pub fn json(json: bool) -> Format {
        if json {
            Format::Json
        } else {
            Format::Human
        }
    }

    /// `v` as pretty JSON (one trailing newline; nothing in its strings
    /// that a terminal would act on, see [`json`]) or as `human` renders it.
    pub fn render<T: serde::Serialize + ?Sized>(
        self,
        v: &T,
        human: impl FnOnce(&T) -> String,
    ) -> Result<String, json::JsonError> {
        Ok(match self {
            Format::Human => human(v),
            Format::Json => json::to_string_pretty(v)? + "\n",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_machine_is_not_running_and_says_how_to_start_it() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        crate::host::store::saved_sample(&store);
        let e = running(&store, "dev", "/opt/b2d").unwrap_err().to_string();
        assert_eq!(
            e,
            "machine \"dev\" is not running: start it with `/opt/b2d up dev`"
        );
        let e = running(&store, "nope", "b2d").unwrap_err().to_string();
        assert!(e.contains("no machine named \"nope\""), "{e}");
    }

    #[test]
    fn reports_render_for_people_or_as_json() {
        let v = vec![1, 2];
        assert_eq!(
            Format::json(false)
                .render(&v, |v| format!("{v:?}"))
                .unwrap(),
            "[1, 2]"
        );
        assert_eq!(
            Format::json(true).render(&v, |_| unreachable!()).unwrap(),
            "[\n  1,\n  2\n]\n"
        );
    }
}
