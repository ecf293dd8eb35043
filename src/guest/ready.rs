//! The ready line (boot step 8): one machine-readable status line on the
//! console once sshd and dockerd answer, or at the deadline anyway:
//! `b2d-ready {"ms":1234,"ip":["10.0.2.15"],"data":"/mnt/sda1","ssh":true,"docker":true}`

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Field order is the key order of the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub ms: u64,
    pub ip: Vec<String>,
    /// Data mount point; null when running from RAM.
    pub data: Option<String>,
    pub ssh: bool,
    pub docker: bool,
}

pub const PREFIX: &str = "b2d-ready ";

impl Ready {
    /// The last ready line in a console log (the host reads the serial log
    /// with this); a line that does not parse is skipped.
    pub fn last_in(log: &str) -> Option<Ready> {
        log.lines()
            .rev()
            .filter_map(|l| l.split_once(PREFIX).map(|(_, j)| j.trim()))
            .find_map(|j| serde_json::from_str(j).ok())
    }

    pub fn line(&self) -> String {
        format!(
            "b2d-ready {}",
            serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
        )
    }
}

/// The console warning when no data disk is in use.
pub const RAM_WARNING: &str = "\
*****************************************************************
* WARNING: b2d is running from RAM. No data disk is in use, so  *
* containers, images and volumes are LOST when this VM stops.   *
* Attach a disk made by `b2d disk create` (or a blank disk) and *
* reboot to keep your data.                                     *
*****************************************************************";

/// Whether something accepts TCP connections at `addr` (sshd on :22).
pub fn tcp_open(addr: &str, timeout: Duration) -> bool {
    addr.parse()
        .ok()
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, timeout).is_ok())
}

/// Whether an HTTP response is `200` with body `OK` (Docker's /_ping).
pub fn ping_ok(resp: &[u8]) -> bool {
    let text = String::from_utf8_lossy(resp);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let status_ok = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        == Some("200");
    status_ok && body.trim() == "OK"
}

/// `GET /_ping` over the Docker unix socket.
pub fn docker_ping(sock: &Path, timeout: Duration) -> bool {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut resp = Vec::new();
    let _ = s.take(4096).read_to_end(&mut resp);
    ping_ok(&resp)
}

/// What to probe.
#[derive(Debug, Clone)]
pub struct Probes {
    pub ssh_addr: String,
    pub docker_sock: PathBuf,
    pub deadline: Duration,
    pub interval: Duration,
}

/// Poll until both answer or the deadline passes; returns (ssh, docker).
pub fn wait(p: &Probes) -> (bool, bool) {
    let end = Instant::now() + p.deadline;
    let step = Duration::from_secs(1);
    let (mut ssh, mut docker) = (false, false);
    loop {
        ssh = ssh || tcp_open(&p.ssh_addr, step);
        docker = docker || docker_ping(&p.docker_sock, step);
        if (ssh && docker) || Instant::now() >= end {
            return (ssh, docker);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_exactly_the_agreed_keys_in_order() {
        let r = Ready {
            ms: 1234,
            ip: vec!["10.0.2.15".into()],
            data: Some("/mnt/sda1".into()),
            ssh: true,
            docker: true,
        };
        assert_eq!(
            r.line(),
            r#"b2d-ready {"ms":1234,"ip":["10.0.2.15"],"data":"/mnt/sda1","ssh":true,"docker":true}"#
        );
        let ram = Ready {
            data: None,
            ip: vec![],
            ssh: false,
            ..r
        };
        assert_eq!(
            ram.line(),
            r#"b2d-ready {"ms":1234,"ip":[],"data":null,"ssh":false,"docker":true}"#
        );
        // The host finds the last one in a noisy console log.
        let log = format!(
            "{}\r\nb2d login: {}\r\nb2d-ready {{broken\n",
            r.line(),
            ram.line()
        );
        assert_eq!(Ready::last_in(&log), Some(ram));
        assert_eq!(Ready::last_in("no line"), None);
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
            deadline: Duration::ZERO,
            interval: Duration::from_millis(10),
        };
        assert_eq!(wait(&p), (false, false));
    }
}
