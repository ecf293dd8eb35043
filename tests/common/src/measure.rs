//! Running a program while measuring what it cost: its wall time and its
//! peak memory (`ru_maxrss` of that one child, from `wait4`, so other
//! programs the test process runs meanwhile do not count).

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// A finished run and what it cost.
#[derive(Debug)]
pub struct Measured {
    pub output: Output,
    /// From the spawn to the exit.
    pub wall: Duration,
    /// Peak resident set size, in bytes.
    pub max_rss: u64,
}

impl Measured {
    /// Fail the test, naming `what`, unless the run ended within `wall`
    /// and its memory peaked under `rss` bytes.
    pub fn assert_cheap(&self, what: &str, wall: Duration, rss: u64) {
        let said = String::from_utf8_lossy(&self.output.stderr);
        assert!(
            self.wall < wall,
            "`{what}` took {:?} (limit {wall:?}): {said}",
            self.wall
        );
        assert!(
            self.max_rss < rss,
            "`{what}` peaked at {} bytes (limit {rss}): {said}",
            self.max_rss
        );
    }

    /// Fail the test, naming `what`, unless the run failed with one line
    /// on stderr that names `path` exactly once and says each of `words`;
    /// returns that line.
    pub fn assert_refused(&self, what: &str, path: &Path, words: &[&str]) -> String {
        let msg = super::assert_fails(what, &self.output);
        let shown = path.display().to_string();
        assert_eq!(msg.matches(&shown).count(), 1, "`{what}`: path once: {msg}");
        for w in words {
            assert!(msg.contains(w), "`{what}`: {w:?} missing: {msg}");
        }
        assert_eq!(msg.lines().count(), 1, "`{what}`: one line: {msg}");
        msg
    }
}

/// Run `cmd` (no stdin, output captured) and measure it. A run that is
/// not over after `limit` has its process group killed and fails the test,
/// naming the command.
pub fn measured(cmd: &mut Command, limit: Duration) -> Measured {
    let shown = super::shown(cmd);
    let start = Instant::now();
    // Reaped below by wait4, which std's Child knows nothing of.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| super::cannot_run(cmd, e));
    let pid = child.id() as libc::pid_t;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout is piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr is piped")));
    let mut timed_out = false;
    let (status, usage) = loop {
        let flags = if timed_out { 0 } else { libc::WNOHANG };
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of that plain C
        // struct; wait4 overwrites it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not yet reaped (std's Child is
        // never waited on); both pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        assert!(
            r == 0,
            "`{shown}`: wait4: {}",
            std::io::Error::last_os_error()
        );
        if start.elapsed() > limit {
            // SAFETY: kill(2) on the child's own process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            timed_out = true;
        } else {
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let wall = start.elapsed();
    let output = Output {
        status: ExitStatus::from_raw(status),
        stdout: stdout.join().expect("reading stdout"),
        stderr: stderr.join().expect("reading stderr"),
    };
    assert!(
        !timed_out,
        "`{shown}` still ran after {} ms and was killed:\nstdout: {}\nstderr: {}",
        limit.as_millis(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Measured {
        output,
        wall,
        // ru_maxrss is in KiB on Linux.
        max_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_time_memory_and_kills_a_hang() {
        let m = measured(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        );
        assert_eq!(m.output.status.code(), Some(3));
        assert_eq!(m.output.stdout, b"out\n");
        assert_eq!(m.output.stderr, b"err\n");
        assert!(m.max_rss > 0 && m.max_rss < 64 << 20, "{}", m.max_rss);
        // A program that holds 100 MiB shows it.
        let big = measured(
            Command::new("python3").args([
                "-c",
                "b = bytearray(100 << 20); b[::4096] = b'x' * len(b[::4096])",
            ]),
            Duration::from_secs(30),
        );
        assert!(big.output.status.success(), "{big:?}");
        assert!(big.max_rss > 100 << 20, "{}", big.max_rss);
        let slow = std::panic::catch_unwind(|| {
            measured(Command::new("sleep").arg("30"), Duration::from_millis(200))
        })
        .unwrap_err();
        let msg = slow.downcast_ref::<String>().unwrap();
        assert!(msg.contains("`sleep 30` still ran after 200 ms"), "{msg}");
    }
}
