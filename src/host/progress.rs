//! The boot progress display on stderr: on a terminal one line rewritten
//! in place (spinner, elapsed seconds, what the guest is doing); otherwise
//! a plain line whenever the guest moves on to something new.

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    what: String,
    start: Instant,
    tty: bool,
    last: Option<String>,
    tick: usize,
    drawn: bool,
}

const SPIN: &[char] = &['|', '/', '-', '\\'];
const WIDTH: usize = 78;

impl Progress {
    /// `what` heads every line, e.g. `booting default (tcg)`.
    pub fn new(what: impl Into<String>) -> Progress {
        use std::io::IsTerminal;
        Progress {
            what: what.into(),
            start: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            last: None,
            tick: 0,
            drawn: false,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Show that the guest is at `step` (the same step again only moves
    /// the spinner).
    pub fn update(&mut self, step: Option<&str>) {
        let changed = step.is_some() && self.last.as_deref() != step;
        if changed {
            self.last = step.map(str::to_string);
        }
        let line = self.line();
        let mut err = std::io::stderr().lock();
        if self.tty {
            self.tick += 1;
            let _ = write!(err, "\r\x1b[2K{} {line}", SPIN[self.tick % SPIN.len()]);
            self.drawn = true;
        } else if changed {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    fn line(&self) -> String {
        let mut l = format!("{} {:>4}s", self.what, self.elapsed().as_secs());
        if let Some(s) = &self.last {
            l += ": ";
            l += s;
        }
        truncate(&l, WIDTH)
    }

    /// Clear the in-place line before other output.
    pub fn finish(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut t: String = s.chars().take(width - 1).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_to_the_width() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdefgh", 5), "abcd…");
        assert_eq!(truncate("ééééééé", 4).chars().count(), 4);
    }

    #[test]
    fn the_line_names_the_boot_and_its_step() {
        let mut p = Progress::new("booting dev (tcg)");
        p.tty = false;
        p.update(Some("data disk /dev/sda: mounted"));
        assert!(p.line().starts_with("booting dev (tcg)"), "{}", p.line());
        assert!(p.line().ends_with("s: data disk /dev/sda: mounted"));
        p.update(None);
        assert_eq!(p.last.as_deref(), Some("data disk /dev/sda: mounted"));
    }
}
