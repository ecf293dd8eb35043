//! Progress of long waits. A verb reports [`Event`]s to a [`Sink`]; the
//! binary's sink is [`Progress`] on stderr: on a terminal one line
//! rewritten in place (spinner, elapsed seconds, what the guest is doing);
//! otherwise a plain line whenever the guest moves on to something new.
//! Lines worth keeping ([`Event::Note`]) are printed either way.

use std::io::Write;
use std::time::{Duration, Instant};

/// What a long-running verb has to report while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A line to keep, e.g. `Creating machine "dev" (…)`.
    Note(String),
    /// A wait starts; `what` heads its lines, e.g. `Booting dev (tcg)`.
    Begin(String),
    /// The wait goes on; the step it is at, if known (the same step again
    /// only moves the spinner and the clock).
    Step(Option<String>),
    /// The wait is over (either way): clear the line.
    End,
}

pub trait Sink {
    fn event(&mut self, e: Event);
}

/// Events recorded, for tests.
impl Sink for Vec<Event> {
    fn event(&mut self, e: Event) {
        self.push(e);
    }
}

/// Events dropped.
pub struct Quiet;

impl Sink for Quiet {
    fn event(&mut self, _: Event) {}
}

pub struct Progress<W: Write> {
    out: W,
    tty: bool,
    what: String,
    start: Instant,
    last: Option<String>,
    tick: usize,
    drawn: bool,
}

const SPIN: &[char] = &['|', '/', '-', '\\'];
const WIDTH: usize = 78;

impl Progress<std::io::Stderr> {
    /// On stderr, rewriting one line in place when stderr is a terminal.
    pub fn stderr() -> Self {
        use std::io::IsTerminal;
        Progress::new(std::io::stderr(), std::io::stderr().is_terminal())
    }
}

impl<W: Write> Progress<W> {
    /// `tty`: rewrite one line in place (else one line per new step).
    pub fn new(out: W, tty: bool) -> Self {
        Progress {
            out,
            tty,
            what: String::new(),
            start: Instant::now(),
            last: None,
            tick: 0,
            drawn: false,
        }
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn step(&mut self, step: Option<String>) {
        let changed = step.is_some() && self.last != step;
        if changed {
            self.last = step;
        }
        let line = self.line();
        if self.tty {
            self.tick += 1;
            let _ = write!(self.out, "\r\x1b[2K{} {line}", SPIN[self.tick % SPIN.len()]);
            self.drawn = true;
        } else if changed {
            let _ = writeln!(self.out, "{line}");
        }
        let _ = self.out.flush();
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
    fn clear(&mut self) {
        if self.drawn {
            let _ = write!(self.out, "\r\x1b[2K");
            let _ = self.out.flush();
            self.drawn = false;
        }
    }
}

impl<W: Write> Sink for Progress<W> {
    fn event(&mut self, e: Event) {
        match e {
            Event::Note(line) => {
                self.clear();
                let _ = writeln!(self.out, "{line}");
                let _ = self.out.flush();
            }
            Event::Begin(what) => {
                self.clear();
                self.what = what;
                self.start = Instant::now();
                self.last = None;
            }
            Event::Step(step) => self.step(step),
            Event::End => self.clear(),
        }
    }
}

impl<W: Write> Drop for Progress<W> {
    fn drop(&mut self) {
        self.clear();
    }
}

pub(crate) fn truncate(s: &str, width: usize) -> String {
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

    fn step(s: &str) -> Event {
        Event::Step(Some(s.into()))
    }

    /// The events of a boot that is 12 s in when the disk is mounted.
    fn boot(p: &mut Progress<&mut Vec<u8>>) {
        p.event(Event::Note("Creating machine \"dev\"".into()));
        p.event(Event::Begin("Booting dev (tcg)".into()));
        p.event(step("starting QEMU"));
        p.event(step("starting QEMU"));
        p.start -= Duration::from_secs(12);
        p.event(step("data disk /dev/sda: mounted"));
        p.event(Event::Step(None));
        p.event(Event::End);
    }

    #[test]
    fn long_lines_are_cut_to_the_width() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdefgh", 5), "abcd…");
        assert_eq!(truncate("ééééééé", 4).chars().count(), 4);
    }

    #[test]
    fn the_line_names_the_boot_and_its_step() {
        let mut out = Vec::new();
        let mut p = Progress::new(&mut out, false);
        p.event(Event::Begin("booting dev (tcg)".into()));
        p.event(step("data disk /dev/sda: mounted"));
        assert!(p.line().starts_with("booting dev (tcg)"), "{}", p.line());
        assert!(p.line().ends_with("s: data disk /dev/sda: mounted"));
        p.event(Event::Step(None));
        assert_eq!(p.last.as_deref(), Some("data disk /dev/sda: mounted"));
    }

    #[test]
    fn without_a_terminal_each_new_step_is_one_line() {
        let mut out = Vec::new();
        boot(&mut Progress::new(&mut out, false));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Creating machine \"dev\"\n\
             Booting dev (tcg)    0s: starting QEMU\n\
             Booting dev (tcg)   12s: data disk /dev/sda: mounted\n"
        );
    }

    #[test]
    fn on_a_terminal_one_line_is_rewritten_with_the_elapsed_time() {
        let mut out = Vec::new();
        boot(&mut Progress::new(&mut out, true));
        let s = String::from_utf8(out).unwrap();
        let (note, rest) = s.split_once('\n').unwrap();
        assert_eq!(note, "Creating machine \"dev\"");
        assert!(!rest.contains('\n'), "one line, rewritten: {rest:?}");
        let frames: Vec<&str> = rest.split("\r\x1b[2K").filter(|f| !f.is_empty()).collect();
        assert_eq!(
            frames,
            [
                "/ Booting dev (tcg)    0s: starting QEMU",
                "- Booting dev (tcg)    0s: starting QEMU",
                "\\ Booting dev (tcg)   12s: data disk /dev/sda: mounted",
                "| Booting dev (tcg)   12s: data disk /dev/sda: mounted",
            ]
        );
        assert!(rest.ends_with("\r\x1b[2K"), "cleared at the end: {rest:?}");
    }

    #[test]
    fn a_note_clears_the_line_and_a_dropped_progress_leaves_none() {
        let mut out = Vec::new();
        {
            let mut p = Progress::new(&mut out, true);
            p.event(Event::Begin("Waiting for dev".into()));
            p.event(Event::Step(None));
            p.event(Event::Note("guest: x".into()));
            p.event(Event::Step(None));
        }
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "\r\x1b[2K/ Waiting for dev    0s\r\x1b[2Kguest: x\n\
             \r\x1b[2K- Waiting for dev    0s\r\x1b[2K"
        );
    }
}
