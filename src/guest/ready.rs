//! The ready line (boot step 8): one machine-readable status line on the
//! console once sshd and dockerd answer, or at the deadline anyway:
//! the line itself is the contract in [`crate::wire::ready`]; this module
//! probes sshd and dockerd and prints it.

use crate::util::tcp_open;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// dockerd ends this many times without ever answering: a setting it
/// refuses, not a slow start. The ready line goes out without it.
pub const GIVE_UP_AFTER: u32 = 3;

/// The console warning when no data disk is in use.
pub const RAM_WARNING: &str = "\
*****************************************************************
* WARNING: b2d is running from RAM. No data disk is in use, so  *
* containers, images and volumes are LOST when this VM stops.   *
* Attach a disk made by `b2d disk create` (or a blank disk) and *
* reboot to keep your data.                                     *
*****************************************************************";

/// Whether an answer is `200` with body `OK` (Docker's /_ping).
fn answers_ok(answer: Option<(u16, &[u8])>) -> bool {
    matches!(answer, Some((200, body)) if body.trim_ascii() == b"OK")
}

/// Whether an HTTP response is `200` with body `OK`.
pub fn ping_ok(resp: &[u8]) -> bool {
    answers_ok(super::docker_api::split_response(resp))
}

/// `GET /_ping` over the Docker unix socket.
pub fn docker_ping(sock: &Path, timeout: Duration) -> bool {
    let answer = super::docker_api::get(sock, "/_ping", timeout, 4096);
    answers_ok(answer.as_ref().map(|(code, body)| (*code, &body[..])))
}

/// What to probe.
#[derive(Debug, Clone)]
pub struct Probes {
    pub ssh_addr: String,
    pub docker_sock: PathBuf,
    /// containerd's socket: watched for the boot phases only.
    pub containerd_sock: PathBuf,
    pub deadline: Duration,
    pub interval: Duration,
    /// dockerd's exits so far (the supervisor counts them).
    pub docker_exits: Option<Arc<AtomicU32>>,
}

/// When each service first answered, by the clock given to [`wait`];
/// None when it had not by the deadline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answered {
    pub ssh: Option<u64>,
    pub containerd: Option<u64>,
    pub docker: Option<u64>,
}

/// Poll until sshd and dockerd answer or the deadline passes, noting the
/// `clock` when each (and containerd) first did.
pub fn wait(p: &Probes, clock: impl Fn() -> u64) -> Answered {
    let end = Instant::now() + p.deadline;
    let step = Duration::from_secs(1);
    let mut a = Answered::default();
    let mut gave_up = false;
    loop {
        if a.ssh.is_none() && tcp_open(&p.ssh_addr, step) {
            a.ssh = Some(clock());
        }
        if a.containerd.is_none() && UnixStream::connect(&p.containerd_sock).is_ok() {
            a.containerd = Some(clock());
        }
        if a.docker.is_none() && docker_ping(&p.docker_sock, step) {
            a.docker = Some(clock());
        }
        let exits = p
            .docker_exits
            .as_ref()
            .map_or(0, |c| c.load(Ordering::SeqCst));
        if a.docker.is_none() && !gave_up && exits >= GIVE_UP_AFTER {
            gave_up = true;
            log::error!(
                "dockerd ended {exits} times without answering; the boot goes on without it (`b2d status` shows what it said)"
            );
        }
        if (a.ssh.is_some() && (a.docker.is_some() || gave_up)) || Instant::now() >= end {
            return a;
        }
        std::thread::sleep(p.interval);
    }
}

/// Print `text` on the console device and on stdout (unless stdout is the
/// console already).
pub fn announce(console: &Path, text: &str) {
    use std::os::unix::fs::MetadataExt;
    let line = format!("{text}\n");
    let con_rdev = std::fs::metadata(console).map(|m| m.rdev()).ok();
    let out_rdev = std::fs::metadata("/proc/self/fd/1").map(|m| m.rdev()).ok();
    if let Ok(mut c) = std::fs::OpenOptions::new().write(true).open(console) {
        let _ = c.write_all(line.as_bytes());
    }
    if con_rdev.is_none() || con_rdev != out_rdev || con_rdev == Some(0) {
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

/// How the CPUs spent the boot so far, from `/proc/stat` (USER_HZ is
/// 100 on Linux): a line for the console, e.g. `boot: 2 CPUs busy
/// 41.20 s, idle 9.80 s (of which waiting for I/O 0.30 s)`. Idle time
/// during a boot is what running things side by side can still win.
pub fn cpu_summary(stat: &str) -> Option<String> {
    let cpus = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    let total = stat.lines().find(|l| l.starts_with("cpu "))?;
    let t: Vec<u64> = total
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal …
    let at = |i: usize| t.get(i).copied().unwrap_or(0);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    let secs = |ticks: u64| ticks as f64 / 100.0;
    Some(format!(
        "boot: {cpus} CPUs busy {:.2} s, idle {:.2} s (of which waiting for I/O {:.2} s)",
        secs(busy),
        secs(at(3) + at(4)),
        secs(at(4))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn cpu_summary_adds_up_the_states() {
        let stat = "cpu  1000 20 300 400 50 6 7 8 0 0\ncpu0 500 10 150 200 25 3 3 4 0 0\ncpu1 500 10 150 200 25 3 4 4 0 0\nintr 1\n";
        assert_eq!(
            cpu_summary(stat).as_deref(),
            Some("boot: 2 CPUs busy 13.41 s, idle 4.50 s (of which waiting for I/O 0.50 s)")
        );
        assert_eq!(cpu_summary("intr 1\n"), None);
        assert_eq!(cpu_summary("cpu  1 x 3\n"), None);
    }

    #[test]
    fn a_dockerd_that_keeps_ending_is_not_waited_for() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let d = tempfile::tempdir().unwrap();
        let exits = Arc::new(AtomicU32::new(GIVE_UP_AFTER - 1));
        let p = Probes {
            ssh_addr: tcp.local_addr().unwrap().to_string(),
            docker_sock: d.path().join("none.sock"),
            containerd_sock: d.path().join("none.sock"),
            deadline: Duration::from_secs(60),
            interval: Duration::from_millis(1),
            docker_exits: Some(exits.clone()),
        };
        let t0 = Instant::now();
        let bump = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            exits.fetch_add(1, Ordering::SeqCst);
        });
        let a = wait(&p, || 5);
        bump.join().unwrap();
        assert_eq!(a.ssh, Some(5));
        assert_eq!(a.docker, None);
        assert!(
            t0.elapsed() >= Duration::from_millis(300),
            "waited for the third exit"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "not until the deadline"
        );
    }

    #[test]
    fn ping_response_parsing() {
        assert!(ping_ok(
            b"HTTP/1.0 200 OK\r\nApi-Version: 1.47\r\nContent-Length: 2\r\n\r\nOK"
        ));
        assert!(!ping_ok(b"HTTP/1.0 500 Internal Server Error\r\n\r\nOK"));
        assert!(!ping_ok(b"HTTP/1.0 200 OK\r\n\r\nnope"));
        assert!(!ping_ok(b""));
    }

    #[test]
    fn probes_against_real_sockets() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("docker.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 256];
            let n = c.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"GET /_ping HTTP/1.0\r\n"));
            c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                .unwrap();
        });
        assert!(docker_ping(&sock, Duration::from_secs(5)));
        t.join().unwrap();
        assert!(!docker_ping(
            &d.path().join("none.sock"),
            Duration::from_secs(1)
        ));

        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap().to_string();
        assert!(tcp_open(&addr, Duration::from_secs(2)));
        drop(tcp);
        assert!(!tcp_open("not an address", Duration::from_secs(1)));
        let p = Probes {
            ssh_addr: addr,
            docker_sock: d.path().join("none.sock"),
            containerd_sock: d.path().join("none.sock"),
            deadline: Duration::ZERO,
            interval: Duration::from_millis(10),
            docker_exits: None,
        };
        assert_eq!(wait(&p, || 7), Answered::default());
    }

    #[test]
    fn wait_notes_when_each_service_first_answered() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let d = tempfile::tempdir().unwrap();
        let docker = d.path().join("docker.sock");
        let l = std::os::unix::net::UnixListener::bind(&docker).unwrap();
        // dockerd refuses twice (a 500), then answers.
        let t = std::thread::spawn(move || {
            for i in 0..3 {
                let (mut c, _) = l.accept().unwrap();
                let mut buf = [0u8; 256];
                let _ = c.read(&mut buf).unwrap();
                let status = if i < 2 { "500 No" } else { "200 OK" };
                let _ = write!(c, "HTTP/1.0 {status}\r\nContent-Length: 2\r\n\r\nOK");
            }
        });
        let containerd = d.path().join("containerd.sock");
        let _ctr = std::os::unix::net::UnixListener::bind(&containerd).unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = Probes {
            ssh_addr: tcp.local_addr().unwrap().to_string(),
            docker_sock: docker,
            containerd_sock: containerd,
            deadline: Duration::from_secs(30),
            interval: Duration::from_millis(1),
            docker_exits: None,
        };
        let tick = AtomicU64::new(0);
        let a = wait(&p, || tick.fetch_add(1, Ordering::SeqCst) + 1);
        t.join().unwrap();
        // Each is noted once, on the round it first answered.
        assert_eq!(
            a,
            Answered {
                ssh: Some(1),
                containerd: Some(2),
                docker: Some(3)
            }
        );
    }
}
