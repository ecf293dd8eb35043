//! The agent's console log lines: `[{ms:>7}ms] b2d-init {LEVEL:<5} {text}`,
//! with milliseconds since the kernel booted. `b2d-init`'s logger writes
//! them with [`format_line`]; `b2d up`'s progress, `b2d logs` and the test
//! harness read them with [`parse_line`]. Written by hand rather than with
//! a logging crate's format: the host parses this exact shape, and the
//! serial console is shared with the kernel's own lines, which it skips.

/// A log record's level, as the console spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        [
            Level::Error,
            Level::Warn,
            Level::Info,
            Level::Debug,
            Level::Trace,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

impl From<log::Level> for Level {
    fn from(l: log::Level) -> Level {
        match l {
            log::Level::Error => Level::Error,
            log::Level::Warn => Level::Warn,
            log::Level::Info => Level::Info,
            log::Level::Debug => Level::Debug,
            log::Level::Trace => Level::Trace,
        }
    }
}

/// The tag every agent line carries after its timestamp.
pub const TAG: &str = "b2d-init";

/// One agent log line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    pub ms: u64,
    pub level: Level,
    pub text: &'a str,
}

/// The line the agent prints for one record (with its newline).
pub fn format_line(ms: u64, level: Level, text: &str) -> String {
    format!("[{ms:>7}ms] {TAG} {:<5} {text}\n", level.as_str())
}

/// An agent log line, or None for anything else on the console (kernel
/// messages, the login prompt, the ready line). Leading noise before the
/// `[` (a carriage return, another line's tail) is skipped.
pub fn parse_line(line: &str) -> Option<LogLine<'_>> {
    let start = line.find('[')?;
    let rest = &line[start + 1..];
    let (stamp, rest) = rest.split_once("ms] ")?;
    let ms = stamp.trim().parse().ok()?;
    let rest = rest.strip_prefix(TAG)?.strip_prefix(' ')?;
    let (level, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let level = Level::parse(level)?;
    Some(LogLine {
        ms,
        level,
        text: text.trim_start().trim_end_matches(['\r', '\n']),
    })
}

/// Every agent line in a console log, in order.
pub fn lines(log: &str) -> impl Iterator<Item = LogLine<'_>> {
    log.lines().filter_map(parse_line)
}

/// The text of the agent's line for a service that ended with words of
/// its own (its last lines of output): `service dockerd said: unable to
/// configure the Docker daemon with file …`. `b2d status` and `b2d up`
/// show them.
pub fn service_said(name: &str, words: &str) -> String {
    format!("service {name} said: {words}")
}

/// The service and its words, from the text of a [`service_said`] line.
pub fn parse_service_said(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("service ")?;
    let (name, words) = rest.split_once(" said: ")?;
    (!name.is_empty() && !name.contains(' ')).then_some((name, words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse_agree() {
        for (level, text) in [
            (Level::Info, "disk: formatted /dev/sda"),
            (Level::Warn, "x"),
            (Level::Error, ""),
            (Level::Debug, "a  b"),
        ] {
            let line = format_line(812, level, text);
            assert_eq!(
                parse_line(&line),
                Some(LogLine {
                    ms: 812,
                    level,
                    text
                }),
                "{line:?}"
            );
        }
        assert_eq!(
            format_line(5, Level::Info, "hi"),
            "[      5ms] b2d-init INFO  hi\n"
        );
        assert_eq!(
            format_line(12345678, Level::Warn, "w"),
            "[12345678ms] b2d-init WARN  w\n"
        );
    }

    #[test]
    fn a_service_s_words_round_trip() {
        let t = service_said("dockerd", "unknown flag: --x; a: b");
        assert_eq!(t, "service dockerd said: unknown flag: --x; a: b");
        assert_eq!(
            parse_service_said(&t),
            Some(("dockerd", "unknown flag: --x; a: b"))
        );
        let line = format_line(9, Level::Error, &t);
        assert_eq!(
            parse_line(&line).and_then(|l| parse_service_said(l.text)),
            Some(("dockerd", "unknown flag: --x; a: b"))
        );
        for other in ["service dockerd: started", "service  said: x", "said: x"] {
            assert_eq!(parse_service_said(other), None, "{other}");
        }
    }

    #[test]
    fn other_console_lines_are_not_agent_lines() {
        for l in [
            "[    0.000000] Linux version 6.12.0",
            "b2d login: ",
            r#"b2d-ready {"ms":1}"#,
            "[   12ms] b2d-init NOISE x",
            "[   12ms] other INFO x",
            "",
        ] {
            assert_eq!(parse_line(l), None, "{l:?}");
        }
        let l = parse_line("\r[   1503ms] b2d-init INFO  data disk\r").unwrap();
        assert_eq!((l.ms, l.text), (1503, "data disk"));
        let log = "a\n[ 1ms] b2d-init ERROR e1\nb\n[ 2ms] b2d-init INFO  i\n";
        let got: Vec<_> = lines(log).map(|l| (l.level, l.text)).collect();
        assert_eq!(got, vec![(Level::Error, "e1"), (Level::Info, "i")]);
    }
}
