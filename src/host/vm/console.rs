//! Reading a machine's serial console log on the host: where the boot is
//! (the last `b2d-init` message), whether it died (kernel panic), what it
//! complained about, and whether it reached the ready line.
//!
//! The log is the guest's to write: every reader takes it through
//! [`read_log`] (at most [`READ_MAX`] bytes, decoded lossily), and every
//! text this module hands back is made printable. The host agent keeps
//! the file itself under [`LOG_CAP`] (see [`crate::host::vm::console_rotate`]).

use crate::util::{printable, printable_text};
use crate::wire::console::{self, Level};
use crate::wire::ready::Ready;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// The most `serial.log` holds: the host agent rotates it before then.
pub const LOG_CAP: u64 = 2 << 20;

/// The most of a console log a reader takes: the cap and room for a
/// rotation that comes late.
pub const READ_MAX: u64 = LOG_CAP + LOG_CAP / 4;

/// Of a log longer than [`READ_MAX`] (nothing rotated it), the bytes read
/// from its start: the boot's first lines.
const READ_START: u64 = 64 << 10;

/// The console log at `path` as [`read_open`] reads it; empty when there
/// is none.
pub fn read_log(path: &Path) -> String {
    std::fs::File::open(path)
        .and_then(|mut f| read_open(&mut f))
        .map(|(text, _)| text)
        .unwrap_or_default()
}

/// The text of an open console log, decoded lossily, and the offset it
/// was read to. At most [`READ_MAX`] bytes: of a longer log, its first
/// [`READ_START`] bytes and its end, each cut at a line break, with a
/// line between them that says how much was left out.
pub fn read_open(f: &mut std::fs::File) -> io::Result<(String, u64)> {
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(0))?;
    let mut buf = Vec::new();
    if len <= READ_MAX {
        f.take(READ_MAX).read_to_end(&mut buf)?;
        let end = buf.len() as u64;
        return Ok((String::from_utf8_lossy(&buf).into_owned(), end));
    }
    f.take(READ_START).read_to_end(&mut buf)?;
    buf.truncate(buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1));
    let from = len - (READ_MAX - READ_START);
    f.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    f.take(READ_MAX - READ_START).read_to_end(&mut tail)?;
    let end = from + tail.len() as u64;
    let skip = tail.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    let left_out = from + skip as u64 - buf.len() as u64;
    buf.extend_from_slice(format!("[b2d] ({left_out} bytes of the console not read)\n").as_bytes());
    buf.extend_from_slice(&tail[skip..]);
    Ok((String::from_utf8_lossy(&buf).into_owned(), end))
}

/// What the console log says about a boot in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// Still booting; the last thing b2d-init (or the kernel) said.
    Booting {
        last: Option<String>,
    },
    Ready(Box<Ready>),
    /// The guest cannot come up; the line that says why.
    Failed(String),
}

/// The line that means the guest will not reach the ready line: the
/// kernel's own panic message, at the start of a kernel line. b2d-init's
/// own errors do not count: it carries on (from RAM, without TLS…) and
/// still prints the ready line. Nor does a line that merely holds the
/// words: the kernel names a faulting process by its `comm`, which any
/// program in the guest chooses.
const PANIC: &str = "Kernel panic - not syncing:";

/// The message of a kernel console line: what follows its `[   12.345678] `
/// timestamp, or the whole line (leading blanks and carriage returns
/// skipped) when it has none.
fn kernel_message(line: &str) -> &str {
    let line = line.trim_start_matches([' ', '\r']);
    if let Some((stamp, msg)) = line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        let stamp = stamp.trim_start();
        if !stamp.is_empty() && stamp.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return msg;
        }
    }
    line
}

fn is_panic(line: &str) -> bool {
    kernel_message(line).starts_with(PANIC)
}

/// A Ready whose guest-written strings are printable.
fn printable_ready(mut r: Ready) -> Ready {
    for ip in &mut r.ip {
        *ip = printable(ip).into_owned();
    }
    r.data = r.data.map(|d| printable(&d).into_owned());
    r
}

pub fn read(log: &str) -> Boot {
    if let Some(r) = Ready::last_in(log) {
        return Boot::Ready(Box::new(printable_ready(r)));
    }
    if let Some(line) = log.lines().find(|l| is_panic(l)) {
        return Boot::Failed(printable(line.trim()).into_owned());
    }
    Boot::Booting {
        last: last_message(log),
    }
}

/// The text of the last agent INFO line, without its timestamp, or
/// "kernel booting" once the kernel has printed anything.
pub fn last_message(log: &str) -> Option<String> {
    let last = console::lines(log)
        .filter(|l| l.level == Level::Info)
        .last()
        .map(|l| printable(l.text.trim()).into_owned());
    last.or_else(|| (!log.trim().is_empty()).then(|| "kernel booting".to_string()))
}

/// The agent's ERROR messages (a boot that went on without something).
pub fn errors(log: &str) -> Vec<String> {
    console::lines(log)
        .filter(|l| l.level == Level::Error)
        .map(|l| printable(l.text.trim()).into_owned())
        .collect()
}

/// What service `name` (e.g. `dockerd`) said when it last ended, in
/// `log` (the agent's `service NAME said: …` lines).
pub fn last_said(log: &str, name: &str) -> Option<String> {
    console::lines(log)
        .filter_map(|l| console::parse_service_said(l.text))
        .filter(|(n, _)| *n == name)
        .last()
        .map(|(_, w)| printable(w.trim()).into_owned())
}

/// [`last_said`] of what came after the last ready line (a service that
/// ended once the boot was over).
pub fn said_since_ready(log: &str, name: &str) -> Option<String> {
    let from = log.rfind(crate::wire::ready::PREFIX).unwrap_or(0);
    last_said(&log[from..], name)
}

/// `: dockerd said: …` for an error message, or nothing.
pub fn dockerd_said(log: &str) -> String {
    last_said(log, "dockerd")
        .map(|w| format!(": dockerd said: {w}"))
        .unwrap_or_default()
}

/// How the kernel's message opens a kernel oops report: its cause comes
/// first, long before the panic line that ends it.
const OOPS_START: &[&str] = &[
    "BUG: ",
    "Oops: ",
    "general protection fault",
    "invalid opcode",
    "kernel BUG at",
    "double fault",
    "stack segment",
    "Unable to handle kernel",
];

/// Whether a kernel line opens an oops report. A user program's fault
/// report (`NAME[PID]: segfault at …`, `NAME[PID] trap invalid opcode …`)
/// starts with the program's own name, which may read like one: it
/// does not count.
fn opens_oops(line: &str) -> bool {
    let msg = kernel_message(line);
    let user_fault = ["]: segfault at ", "] trap ", "] general protection fault"]
        .iter()
        .any(|f| msg.contains(f));
    OOPS_START.iter().any(|s| msg.starts_with(s)) && !user_fault
}

/// The first kernel oops report, from its opening line (at most `n`
/// lines), printable.
pub fn oops(log: &str, n: usize) -> Option<String> {
    let lines: Vec<&str> = log.lines().collect();
    let i = lines.iter().position(|l| opens_oops(l))?;
    let report = lines[i..lines.len().min(i + n)].join("\n");
    Some(printable_text(&report).into_owned())
}

/// The lines of a failed boot worth showing: the first oops report, else
/// the last `n` lines.
pub fn failure(log: &str, n: usize) -> String {
    oops(log, n).unwrap_or_else(|| tail(log, n))
}

/// The last `n` lines, for error reports, printable.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    printable_text(&lines[lines.len().saturating_sub(n)..].join("\n")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOTING: &str = "\
[    0.000000] Linux version 6.12.0
[    812ms] b2d-init INFO  b2d-init 0.1.0 starting
[   1503ms] b2d-init INFO  data disk /dev/sda: formatting
[   1504ms] b2d-init DEBUG wrote journal
";

    #[test]
    fn progress_is_the_last_info_message() {
        assert_eq!(
            read(BOOTING),
            Boot::Booting {
                last: Some("data disk /dev/sda: formatting".into())
            }
        );
        assert_eq!(read(""), Boot::Booting { last: None });
        assert_eq!(
            last_message("SeaBIOS\n"),
            Some("kernel booting".to_string())
        );
    }

    #[test]
    fn ready_line_wins_and_is_parsed() {
        let log = format!(
            "{BOOTING}b2d-ready {{\"ms\":9000,\"ip\":[\"10.0.2.15\"],\"data\":\"/mnt/sda1\",\"ssh\":true,\"docker\":true}}\n"
        );
        match read(&log) {
            Boot::Ready(r) => {
                assert_eq!(r.ip, vec!["10.0.2.15".to_string()]);
                assert_eq!(r.data.as_deref(), Some("/mnt/sda1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_panic_fails_the_boot_and_init_errors_do_not() {
        let log =
            format!("{BOOTING}[    3.1] Kernel panic - not syncing: Attempted to kill init!\n");
        assert!(matches!(read(&log), Boot::Failed(l) if l.contains("Attempted to kill init")));
        let log = format!("{BOOTING}[   1600ms] b2d-init ERROR disk: x; RUNNING FROM RAM\n");
        assert!(matches!(read(&log), Boot::Booting { .. }));
        assert_eq!(errors(&log), vec!["disk: x; RUNNING FROM RAM".to_string()]);
    }

    #[test]
    fn a_failure_shows_the_oops_from_its_start() {
        let mut log =
            format!("{BOOTING}[   16.5] BUG: kernel NULL pointer dereference, address: 0\n");
        for i in 0..40 {
            log.push_str(&format!("[   16.6] frame {i}\n"));
        }
        log.push_str("[   16.7] Kernel panic - not syncing: Fatal exception\n");
        let shown = failure(&log, 30);
        assert!(
            shown.starts_with("[   16.5] BUG: kernel NULL pointer"),
            "{shown}"
        );
        assert_eq!(shown.lines().count(), 30);
        // Without an oops report, the tail.
        assert_eq!(failure("a\nb\nc\n", 2), "b\nc");
    }

    #[test]
    fn a_service_s_last_words_are_found_before_and_after_the_ready_line() {
        let log = format!(
            "{BOOTING}[ 9ms] b2d-init WARN  service dockerd (pid 7) ended after 0.2s: exit code 1; restart in 0.5s\n\
             [ 9ms] b2d-init ERROR service dockerd said: unknown flag: --x\n\
             [ 9ms] b2d-init ERROR service sshd said: no host keys\n\
             [10ms] b2d-init ERROR service dockerd said: invalid mirror\n"
        );
        assert_eq!(
            last_said(&log, "dockerd").as_deref(),
            Some("invalid mirror")
        );
        assert_eq!(last_said(&log, "sshd").as_deref(), Some("no host keys"));
        assert_eq!(last_said(BOOTING, "dockerd"), None);
        assert_eq!(dockerd_said(&log), ": dockerd said: invalid mirror");
        assert_eq!(dockerd_said(BOOTING), "");
        let ready = format!(
            "{log}b2d-ready {{\"ms\":1,\"ip\":[],\"data\":null,\"ssh\":true,\"docker\":true}}\n"
        );
        assert_eq!(said_since_ready(&ready, "dockerd"), None);
        let later = format!("{ready}[99ms] b2d-init ERROR service dockerd said: out of disk\n");
        assert_eq!(
            said_since_ready(&later, "dockerd").as_deref(),
            Some("out of disk")
        );
    }

    #[test]
    fn only_the_kernel_s_own_panic_line_fails_the_boot() {
        for fatal in [
            "[   12.345678] Kernel panic - not syncing: VFS: Unable to mount root fs",
            "\r[    3.1] Kernel panic - not syncing: Attempted to kill init!",
            "Kernel panic - not syncing: Fatal exception",
        ] {
            let log = format!("{BOOTING}{fatal}\n");
            assert!(
                matches!(read(&log), Boot::Failed(l) if l.contains("not syncing")),
                "{fatal}"
            );
        }
        // A process may name itself "Kernel panic"; the kernel names it in
        // its fault reports, and b2d-init may quote it.
        for harmless in [
            "[   20.100000] Kernel panic[812]: segfault at 0 ip 0000 sp 0000 error 4",
            "[   20.2] traps: Kernel panic[812] general protection fault ip:4011",
            "[  2100ms] b2d-init ERROR service dockerd said: Kernel panic - not syncing: no",
            "x Kernel panic - not syncing: y",
        ] {
            let log = format!("{BOOTING}{harmless}\n");
            assert!(matches!(read(&log), Boot::Booting { .. }), "{harmless}");
        }
    }

    #[test]
    fn a_user_fault_report_is_not_an_oops() {
        let log = "[ 5.1] BUG: x[9]: segfault at 0 ip 1 sp 2 error 4\n\
                   [ 5.2] traps: a[9] general protection fault ip:1 sp:2 error:0\n\
                   [ 5.3] invalid opcode[9] trap invalid opcode ip:1 sp:2 error:0\n";
        assert_eq!(oops(log, 5), None);
        let real = format!(
            "{log}[ 6.0] Oops: general protection fault, probably for non-canonical address\n"
        );
        assert!(oops(&real, 5).unwrap().starts_with("[ 6.0] Oops: "));
    }

    #[test]
    fn guest_text_comes_back_printable() {
        let log = "[ 9ms] b2d-init ERROR service dockerd said: \x1b]0;pwned\x07 bad\n\
                   [ 9ms] b2d-init INFO  step \u{9b}31m one\n\
                   b2d-ready {\"ms\":1,\"ip\":[\"10.0.2.15\\u001b[2J\"],\"data\":\"/mnt\\u202e\",\"ssh\":true,\"docker\":false}\n";
        let shown = [
            errors(log).join(""),
            last_said(log, "dockerd").unwrap(),
            last_message(log).unwrap(),
            tail(log, 3),
            dockerd_said(log),
        ];
        for s in shown {
            assert!(
                !s.chars()
                    .any(|c| c != '\n' && crate::util::drives_terminal(c)),
                "{s:?}"
            );
        }
        let Boot::Ready(r) = read(log) else { panic!() };
        assert_eq!(r.ip, ["10.0.2.15\\x1b[2J"]);
        assert_eq!(r.data.as_deref(), Some("/mnt\\u{202e}"));
    }

    #[test]
    fn a_log_is_read_bounded_and_lossily() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("serial.log");
        assert_eq!(read_log(&path), "", "no log yet");
        // One byte that is not UTF-8 costs one character, not the log.
        let mut bytes = BOOTING.as_bytes().to_vec();
        bytes.insert(3, 0xff);
        bytes.extend_from_slice(
            b"b2d-ready {\"ms\":1,\"ip\":[],\"data\":null,\"ssh\":true,\"docker\":true}\n",
        );
        std::fs::write(&path, &bytes).unwrap();
        let log = read_log(&path);
        assert!(log.contains('\u{fffd}') && matches!(read(&log), Boot::Ready(_)));
        // A log nothing rotated: its start and its end, READ_MAX in all.
        let mut big = BOOTING.as_bytes().to_vec();
        let mut i = 0;
        while (big.len() as u64) < 3 * LOG_CAP {
            big.extend_from_slice(format!("flood line {i:08}\n").as_bytes());
            i += 1;
        }
        big.extend_from_slice(b"the end\n");
        std::fs::write(&path, &big).unwrap();
        let mut f = std::fs::File::open(&path).unwrap();
        let (log, end) = read_open(&mut f).unwrap();
        assert_eq!(end, big.len() as u64);
        assert!(log.len() as u64 <= READ_MAX + 100, "{}", log.len());
        assert!(log.starts_with(BOOTING));
        assert!(log.ends_with("the end\n"));
        assert!(log.contains(" bytes of the console not read)\n"));
        assert_eq!(read(&log), read(BOOTING), "the boot's lines are still read");
        assert!(log.lines().all(|l| l.len() < 100), "cut at line breaks");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
