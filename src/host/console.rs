//! Reading a machine's serial console log on the host: where the boot is
//! (the last `b2d-init` message), whether it died (kernel panic), what it
//! complained about, and whether it reached the ready line.

use crate::wire::console::{self, Level};
use crate::wire::ready::Ready;

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

/// Lines that mean the guest will not reach the ready line. b2d-init's
/// own errors are not among them: it carries on (from RAM, without TLS…)
/// and still prints the ready line.
const FATAL: &[&str] = &["Kernel panic"];

pub fn read(log: &str) -> Boot {
    if let Some(r) = Ready::last_in(log) {
        return Boot::Ready(Box::new(r));
    }
    if let Some(line) = log.lines().find(|l| FATAL.iter().any(|f| l.contains(f))) {
        return Boot::Failed(line.trim().to_string());
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
        .map(|l| l.text.trim().to_string());
    last.or_else(|| (!log.trim().is_empty()).then(|| "kernel booting".to_string()))
}

/// The agent's ERROR messages (a boot that went on without something).
pub fn errors(log: &str) -> Vec<String> {
    console::lines(log)
        .filter(|l| l.level == Level::Error)
        .map(|l| l.text.trim().to_string())
        .collect()
}

/// What service `name` (e.g. `dockerd`) said when it last ended, in
/// `log` (the agent's `service NAME said: …` lines).
pub fn last_said(log: &str, name: &str) -> Option<String> {
    console::lines(log)
        .filter_map(|l| console::parse_service_said(l.text))
        .filter(|(n, _)| *n == name)
        .last()
        .map(|(_, w)| w.trim().to_string())
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

/// Lines that open a kernel oops report: its cause comes first, long
/// before the panic line that ends it.
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

/// The first kernel oops report, from its opening line (at most `n`
/// lines).
pub fn oops(log: &str, n: usize) -> Option<String> {
    let lines: Vec<&str> = log.lines().collect();
    let i = lines
        .iter()
        .position(|l| OOPS_START.iter().any(|s| l.contains(s)))?;
    Some(lines[i..lines.len().min(i + n)].join("\n"))
}

/// The lines of a failed boot worth showing: the first oops report, else
/// the last `n` lines.
pub fn failure(log: &str, n: usize) -> String {
    oops(log, n).unwrap_or_else(|| tail(log, n))
}

/// The last `n` lines, for error reports.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
