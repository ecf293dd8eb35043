//! A running VM: QEMU child, serial log, forwarded ports. Killed on drop;
//! the serial tail is printed when a test fails with the VM alive.

use crate::accel;
use crate::spec::VmSpec;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const OVMF: &str = "/usr/share/ovmf/OVMF.fd";

/// A free TCP port on 127.0.0.1 (bound and released; QEMU takes it next).
pub use test_support::free_port;

/// A process's resident memory in MiB (VmRSS), from the host's /proc.
pub fn rss_mib(pid: u32) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let kib: u64 = st
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"));
    kib >> 10
}

pub struct Vm {
    child: Child,
    pub serial_log: PathBuf,
    pub ssh_port: u16,
    pub docker_port: u16,
    /// Private key that the guest's userdata authorizes.
    pub ssh_key: Option<PathBuf>,
    pub started: Instant,
}

/// The parsed `b2d-ready {json}` line.
#[derive(Debug, Clone)]
pub struct Ready {
    pub json: serde_json::Value,
    /// Wall time from QEMU start to the line.
    pub wall: Duration,
}

impl Vm {
    /// Start QEMU for `spec`; the serial console goes to `dir/serial.log`.
    pub fn boot(spec: &VmSpec, dir: &Path) -> Vm {
        let accel = accel::choose(&spec.iso);
        let serial_log = dir.join("serial.log");
        let _ = std::fs::remove_file(&serial_log);
        let (ssh_port, docker_port) = (free_port(), free_port());
        let args = spec.args(
            accel,
            ssh_port,
            docker_port,
            &serial_log,
            Some(Path::new(OVMF)),
        );
        let child = Command::new("qemu-system-x86_64")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("qemu.stderr")).unwrap())
            .spawn()
            .expect("qemu-system-x86_64 (apt-get install qemu-system-x86 qemu-utils)");
        Vm {
            child,
            serial_log,
            ssh_port,
            docker_port,
            ssh_key: None,
            started: Instant::now(),
        }
    }

    pub fn serial(&self) -> String {
        b2d::host::vm::console::read_log(&self.serial_log)
    }

    /// True while QEMU runs.
    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait until a whole serial line (one its newline has ended: QEMU
    /// may be halfway through writing the last) contains `needle`;
    /// returns that line.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        let t0 = Instant::now();
        loop {
            let serial = self.serial();
            let whole = &serial[..serial.rfind('\n').map_or(0, |i| i + 1)];
            if let Some(l) = whole.lines().find(|l| l.contains(needle)) {
                return l.to_string();
            }
            if serial.contains("Kernel panic - not syncing") {
                panic!(
                    "the guest kernel panicked while waiting for {needle:?}\n{}",
                    self.tail(80)
                );
            }
            if !self.running() {
                let stderr = self.serial_log.with_file_name("qemu.stderr");
                panic!(
                    "QEMU exited while waiting for {needle:?}; it said: {}\n{}",
                    std::fs::read_to_string(stderr).unwrap_or_default().trim(),
                    self.tail(60)
                );
            }
            if t0.elapsed() > limit {
                panic!(
                    "no {needle:?} on the serial console within {}s\n{}",
                    limit.as_secs(),
                    self.tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Wait for the `b2d-ready` line and parse its JSON.
    pub fn ready(&mut self, limit: Duration) -> Ready {
        let line = self.wait_for(b2d::wire::ready::PREFIX, limit);
        let ready = b2d::wire::ready::Ready::parse_line(&line)
            .unwrap_or_else(|| panic!("bad ready line {line:?}"));
        Ready {
            json: serde_json::to_value(ready).expect("a Ready serializes"),
            wall: self.started.elapsed(),
        }
    }

    /// Run a command over ssh as `docker` with the test key, strict about nothing
    /// but the key (host keys are checked by `b2d ssh`'s own tests).
    pub fn ssh(&self, cmd: &str) -> Output {
        let key = self.ssh_key.as_ref().expect("Vm::ssh_key not set");
        Command::new("ssh")
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args([
                "-o",
                "ConnectTimeout=10",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "IdentitiesOnly=yes",
                "-i",
            ])
            .arg(key)
            .args(["-p", &self.ssh_port.to_string(), "docker@127.0.0.1", cmd])
            .stdin(Stdio::null())
            .output()
            .expect("ssh (apt-get install openssh-client)")
    }

    /// ssh that must succeed; returns stdout.
    pub fn ssh_ok(&self, cmd: &str) -> String {
        let out = self.ssh(cmd);
        assert!(
            out.status.success(),
            "ssh {cmd:?} failed ({:?}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.tail(40)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait for QEMU to exit by itself (guest power-off).
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if !self.running() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }

    /// The last `n` lines of the serial console, after the opening of a
    /// kernel oops if there was one.
    pub fn tail(&self, n: usize) -> String {
        let log = self.serial();
        let oops = b2d::host::vm::console::oops(&log, 40)
            .map(|o| format!("--- kernel oops ---\n{o}\n"))
            .unwrap_or_default();
        format!(
            "{oops}--- serial console (last {n} lines at most) ---\n{}",
            b2d::host::vm::console::tail(&log, n)
        )
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.tail(80));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
