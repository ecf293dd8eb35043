//! Waiting for a booting guest: the console log is read every 250 ms
//! until the ready line, a fatal line, QEMU's exit or the deadline.

use super::UpError;
use crate::host::store::Machine;
use crate::host::ui::progress::{Event, Sink};
use crate::host::vm;
use crate::host::vm::console::{self, Boot};
use crate::wire::ready::Ready;
use std::time::{Duration, Instant};

/// The ready line of a guest whose Docker engine answers. A boot that
/// cannot finish is stopped; one that is merely slow is left running.
pub(super) fn ready(
    m: &Machine,
    start: Instant,
    timeout: Duration,
    sink: &mut dyn Sink,
) -> Result<Ready, UpError> {
    loop {
        let log = console::read_log(&m.serial_log());
        match console::read(&log) {
            Boot::Ready(r) if r.docker => return Ok(*r),
            Boot::Ready(_) => {
                return Err(UpError::DockerDown {
                    name: m.name.clone(),
                    said: console::dockerd_said(&log),
                    tail: console::tail(&log, 15),
                })
            }
            Boot::Failed(why) => {
                vm::stop_now(m);
                return Err(UpError::BootFailed {
                    name: m.name.clone(),
                    why,
                    log: m.serial_log(),
                    tail: console::failure(&log, 40),
                });
            }
            Boot::Booting { last } => sink.event(Event::Step(last)),
        }
        if vm::running_pid(m).is_none() {
            let said = std::fs::read_to_string(m.qemu_log()).unwrap_or_default();
            return Err(UpError::QemuExited {
                name: m.name.clone(),
                said: said.trim().to_string(),
                log: m.serial_log(),
                tail: console::tail(&log, 15),
            });
        }
        if start.elapsed() > timeout {
            return Err(UpError::Timeout {
                name: m.name.clone(),
                secs: timeout.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::store::sample;

    #[test]
    fn a_boot_without_qemu_ends_with_the_console_tail_and_a_step_shown() {
        let t = tempfile::tempdir().unwrap();
        let m = sample(t.path());
        std::fs::write(
            m.serial_log(),
            "[  812ms] b2d-init INFO  data disk /dev/sda: formatting\n",
        )
        .unwrap();
        std::fs::write(m.qemu_log(), "qemu: terminating on signal 15\n").unwrap();
        let mut seen = Vec::new();
        let e = ready(&m, Instant::now(), Duration::from_secs(5), &mut seen)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("QEMU for machine \"dev\" exited during boot: qemu: terminating on signal 15\nlast console lines ("),
            "{e}"
        );
        assert!(e.ends_with("data disk /dev/sda: formatting"), "{e}");
        assert_eq!(
            seen,
            [Event::Step(Some("data disk /dev/sda: formatting".into()))]
        );
    }

    #[test]
    fn a_ready_guest_without_docker_is_left_running_and_a_panic_is_named() {
        let t = tempfile::tempdir().unwrap();
        let m = sample(t.path());
        std::fs::write(
            m.serial_log(),
            "[  9ms] b2d-init ERROR service dockerd said: unknown flag: --frob\n\
             b2d-ready {\"ms\":1,\"ip\":[],\"data\":null,\"ssh\":true,\"docker\":false}\n",
        )
        .unwrap();
        let e = ready(&m, Instant::now(), Duration::ZERO, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("machine \"dev\" booted but its Docker engine did not answer: dockerd said: unknown flag: --frob\nIt is left running: see `b2d status dev`"), "{e}");
        std::fs::write(m.serial_log(), "Kernel panic - not syncing: VFS\n").unwrap();
        let e = ready(&m, Instant::now(), Duration::ZERO, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("machine \"dev\" failed to boot: Kernel panic - not syncing: VFS\n"),
            "{e}"
        );
    }
}
