//! What `b2d up` prints: the notes and the time on stderr, how to
//! connect on stdout.

use super::{Outcome, Start};
use crate::host::cmd::Output;
use crate::host::store::Machine;
use crate::host::ui::hints;

/// What `b2d up` prints: the notes and the boot time on stderr, how to
/// connect on stdout. `exe` spells the commands it suggests.
pub fn render(m: &Machine, outcome: &Outcome, exe: &str) -> Output {
    let mut said = Output::default();
    match outcome {
        Outcome::AlreadyRunning { ignored, notes } => {
            for n in notes {
                said.stderr += &format!("b2d: {n}\n");
            }
            if !ignored.is_empty() {
                said.stderr += &format!(
                    "b2d: \"{}\" is running; not applied until it restarts (`{}` then up again): {}\n",
                    m.name,
                    hints::verb(exe, "stop", &m.name),
                    ignored.join(", ")
                );
            }
            said.stdout += &format!(
                "Machine \"{}\" is already running: `eval \"$({})\"` to use it.\n",
                m.name,
                hints::verb(exe, "env", &m.name)
            );
        }
        Outcome::Booted {
            ready,
            secs,
            start,
            accel,
            notes,
        } => {
            for n in notes {
                said.stderr += &format!("b2d: {n}\n");
            }
            let since = match start {
                Start::Resume => "after reading its saved state",
                Start::First | Start::Boot => "after starting QEMU",
            };
            said.stderr += &format!(
                "Running \"{}\" {secs:.1} s {since} ({}, {}).\n",
                m.name,
                start.name(),
                accel.name()
            );
            said.stdout = hints::connected(m, ready, exe);
        }
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::cmd::up::Note;
    use crate::host::store::sample;
    use crate::host::vm::accel::Accel;
    use crate::wire::ready::Ready;

    fn ready() -> Ready {
        Ready {
            ms: 1,
            ip: vec!["10.0.2.15".into()],
            data: Some("/mnt/sda1".into()),
            ssh: true,
            docker: true,
            phases: Default::default(),
        }
    }

    #[test]
    fn a_boot_reports_its_notes_and_time_apart_from_how_to_connect() {
        let m = sample("/m/dev");
        let booted = Outcome::Booted {
            ready: Box::new(ready()),
            secs: 12.34,
            start: Start::First,
            accel: Accel::Tcg,
            notes: vec![Note::Guest("tls: x".into())],
        };
        let said = render(&m, &booted, "b2d");
        assert_eq!(
            said.stderr,
            "b2d: guest: tls: x\nRunning \"dev\" 12.3 s after starting QEMU (first boot, tcg).\n"
        );
        assert!(
            said.stdout.starts_with("Machine \"dev\" is running.\n"),
            "{}",
            said.stdout
        );
        assert!(
            said.stdout.contains("eval \"$(b2d env dev)\""),
            "{}",
            said.stdout
        );
    }

    #[test]
    fn a_resume_says_so_and_why_a_suspended_machine_booted_cold() {
        let m = sample("/m/dev");
        let resumed = Outcome::Booted {
            ready: Box::new(ready()),
            secs: 2.345,
            start: Start::Resume,
            accel: Accel::Tcg,
            notes: vec![],
        };
        assert_eq!(
            render(&m, &resumed, "b2d").stderr,
            "Running \"dev\" 2.3 s after reading its saved state (resume, tcg).\n"
        );
        let cold = Outcome::Booted {
            ready: Box::new(ready()),
            secs: 50.0,
            start: Start::Boot,
            accel: Accel::Tcg,
            notes: vec![
                Note::NotResumed("/m/dev/disk.img: the disk changed since the suspend".into()),
                Note::ResumedToRestart {
                    wanted: vec!["--memory 4096M".into(), "--cpus 4".into()],
                    killed: None,
                },
            ],
        };
        assert_eq!(
            render(&m, &cold, "b2d").stderr,
            "b2d: not resumed: /m/dev/disk.img: the disk changed since the suspend; booting cold from the disk, as after a power cut\n\
             b2d: resumed with its old settings and shut down, to boot cold with --memory 4096M, --cpus 4\n\
             Running \"dev\" 50.0 s after starting QEMU (boot, tcg).\n"
        );
    }

    #[test]
    fn a_running_machine_names_the_options_it_did_not_take() {
        let m = sample("/m/dev");
        let quiet = render(
            &m,
            &Outcome::AlreadyRunning {
                ignored: vec![],
                notes: vec![],
            },
            "b2d",
        );
        assert_eq!(quiet.stderr, "");
        assert_eq!(
            quiet.stdout,
            "Machine \"dev\" is already running: `eval \"$(b2d env dev)\"` to use it.\n"
        );
        let ignored = Outcome::AlreadyRunning {
            ignored: vec!["--memory 4096M".into(), "--cpus 4".into()],
            notes: vec![Note::AgentStarted],
        };
        assert_eq!(
            render(&m, &ignored, "/x/b2d").stderr,
            "b2d: the host agent was not running; started it again\nb2d: \"dev\" is running; not applied until it restarts (`/x/b2d stop dev` then up again): --memory 4096M, --cpus 4\n"
        );
    }
}
