//! The verbs of `b2d`, one module each, as functions over parsed options
//! that return what happened (or the text to print); `src/bin/b2d.rs`
//! parses arguments and prints. Nothing here writes to the terminal
//! except through a writer or progress sink the caller hands in.

pub mod boot_phases;
pub mod cp;
pub mod disk;
pub mod env;
pub mod inspect;
pub mod json;
pub mod kill;
pub mod lifecycle;
pub mod logs;
pub mod ports;
pub mod restart;
pub mod ssh;
pub mod ssh_config;
pub mod status;
pub mod suspend;
pub mod swarm;
pub mod template;
pub mod up;
pub mod url;

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

/// What a verb has to say: `out` for stdout (what scripts read), `err`
/// for stderr (messages for the person at the terminal). Each is empty or
/// whole lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Said {
    pub out: String,
    pub err: String,
}

impl Said {
    /// A message for stderr only.
    pub fn err(line: impl std::fmt::Display) -> Said {
        Said {
            out: String::new(),
            err: format!("{line}\n"),
        }
    }

    /// Text for stdout only.
    pub fn out(text: impl Into<String>) -> Said {
        Said {
            out: text.into(),
            err: String::new(),
        }
    }
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
        let store = Store {
            root: t.path().into(),
        };
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
