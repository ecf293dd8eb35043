//! Why a service ended, in its own words: what it wrote to its log in the
//! run that just ended, boiled down to the lines that say why (dockerd's
//! `unable to configure the Docker daemon with file …`), for one console
//! line ([`crate::wire::console::service_said`]).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Most of a run's output looked at: the end of it.
const TAIL: u64 = 16 << 10;
/// Lines kept.
const LINES: usize = 2;
/// Longest text kept.
const MAX_CHARS: usize = 400;

/// The words in `log` written after byte `start` (where the run began).
pub fn since(log: &Path, start: u64) -> Option<String> {
    let mut f = std::fs::File::open(log).ok()?;
    let end = f.metadata().ok()?.len();
    if end <= start {
        return None;
    }
    let from = start.max(end.saturating_sub(TAIL));
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    f.take(end - from).read_to_end(&mut bytes).ok()?;
    last_words(&String::from_utf8_lossy(&bytes))
}

/// The last lines that say something went wrong: plain lines (a Go
/// program's fatal error) and logrus lines at level error, fatal or
/// panic (their `msg`, and `error` field); usage hints are skipped.
pub fn last_words(text: &str) -> Option<String> {
    let mut kept: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let said = match field(line, "level") {
            Some(level) if matches!(level.as_str(), "error" | "fatal" | "panic") => {
                let msg = field(line, "msg").unwrap_or_else(|| line.to_string());
                match field(line, "error") {
                    Some(e) if !msg.contains(&e) => format!("{msg}: {e}"),
                    _ => msg,
                }
            }
            Some(_) => continue,
            None if line.starts_with("See '") || line.starts_with("Usage:") => continue,
            None => line.to_string(),
        };
        kept.push(said);
    }
    let start = kept.len().saturating_sub(LINES);
    let words = kept[start..].join("; ");
    if words.is_empty() {
        return None;
    }
    Some(match words.char_indices().nth(MAX_CHARS) {
        Some((i, _)) => format!("{}…", &words[..i]),
        None => words,
    })
}

/// The value of logfmt field `key` in `line` (`key=word` or
/// `key="quoted \"text\""`).
fn field(line: &str, key: &str) -> Option<String> {
    let pat = format!("{key}=");
    let mut at = 0;
    let rest = loop {
        let i = at + line[at..].find(&pat)?;
        if i == 0 || line.as_bytes()[i - 1] == b' ' {
            break &line[i + pat.len()..];
        }
        at = i + pat.len();
    };
    let Some(quoted) = rest.strip_prefix('"') else {
        return Some(rest.split(' ').next().unwrap_or_default().to_string());
    };
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next() {
                Some('n') => out.push(' '),
                Some('t') => out.push(' '),
                Some(e) => out.push(e),
                None => break,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerd_s_reasons_are_found_among_its_output() {
        let log = "\
time=\"2026-01-01T00:00:00.1Z\" level=info msg=\"Starting up\"
time=\"2026-01-01T00:00:00.2Z\" level=warning msg=\"Running in rootful mode\"
unable to configure the Docker daemon with file /etc/docker/daemon.json: the following directives don't match any configuration option: foo
";
        assert_eq!(
            last_words(log).unwrap(),
            "unable to configure the Docker daemon with file /etc/docker/daemon.json: the following directives don't match any configuration option: foo"
        );
        let cobra = "unknown flag: --frob\nSee 'dockerd --help'.\n";
        assert_eq!(last_words(cobra).unwrap(), "unknown flag: --frob");
        let logrus = "time=\"x\" level=info msg=\"a\"\ntime=\"x\" level=error msg=\"failed to load \\\"x\\\"\" error=\"no such file\"\ntime=\"x\" level=fatal msg=\"giving up\"\n";
        assert_eq!(
            last_words(logrus).unwrap(),
            "failed to load \"x\": no such file; giving up"
        );
        assert_eq!(last_words("time=\"x\" level=info msg=\"fine\"\n"), None);
        assert_eq!(last_words(""), None);
        let long = "x".repeat(1000);
        let w = last_words(&long).unwrap();
        assert_eq!(w.chars().count(), MAX_CHARS + 1);
        assert!(w.ends_with('…'));
    }

    #[test]
    fn only_the_output_of_the_run_that_ended_counts() {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("docker.log");
        std::fs::write(&log, "old run: failed\n").unwrap();
        let start = std::fs::metadata(&log).unwrap().len();
        assert_eq!(since(&log, start), None);
        std::fs::write(&log, "old run: failed\nnew run: failed too\n").unwrap();
        assert_eq!(since(&log, start).unwrap(), "new run: failed too");
        assert_eq!(since(&t.path().join("none.log"), 0), None);
        assert_eq!(field("a=1 xa=2", "a").as_deref(), Some("1"));
        assert_eq!(field("xa=2 a=3", "a").as_deref(), Some("3"));
        assert_eq!(field("a=\"open", "a").as_deref(), Some("open"));
    }
}
