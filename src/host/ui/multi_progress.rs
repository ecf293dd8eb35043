//! Progress of several machines booting together (`b2d swarm create`
//! boots its nodes in parallel): one line a machine. Each machine's work
//! reports to its own [`Lane`], a [`Sink`] like the one `b2d up` reports
//! to. On a terminal the lines are redrawn in place, each with its elapsed
//! time and step; otherwise each new step is one line, named after its
//! machine. Notes are printed above the lines either way.

use crate::host::ui::progress::{Event, Sink};
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

const WIDTH: usize = 78;

struct Line {
    name: String,
    what: String,
    step: Option<String>,
    start: Instant,
    /// The last word, once the machine's work is over.
    done: Option<String>,
}

struct Inner<W: Write> {
    out: W,
    tty: bool,
    lines: Vec<Line>,
    /// Lines drawn under the cursor (terminal only).
    drawn: usize,
}

/// The lines of several machines, shared by their threads.
pub struct MultiProgress<W: Write> {
    inner: Mutex<Inner<W>>,
}

impl<W: Write> MultiProgress<W> {
    /// One line for each of `names`; `tty`: redraw them in place.
    pub fn new(out: W, tty: bool, names: &[String]) -> Self {
        let now = Instant::now();
        MultiProgress {
            inner: Mutex::new(Inner {
                out,
                tty,
                lines: names
                    .iter()
                    .map(|n| Line {
                        name: n.clone(),
                        what: "waiting".into(),
                        step: None,
                        start: now,
                        done: None,
                    })
                    .collect(),
                drawn: 0,
            }),
        }
    }

    /// The sink of machine `i`.
    pub fn lane(&self, i: usize) -> Lane<'_, W> {
        Lane { display: self, i }
    }

    fn with(&self, f: impl FnOnce(&mut Inner<W>)) {
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g);
    }

    /// Machine `i` is at `what` now (a new phase: its clock restarts).
    pub fn phase(&self, i: usize, what: &str) {
        self.lane(i).event(Event::Begin(what.into()));
    }

    /// Machine `i`'s work is over: its line says `word` from now on.
    pub fn finish(&self, i: usize, word: &str) {
        self.with(|b| {
            if let Some(l) = b.lines.get_mut(i) {
                l.done = Some(word.into());
            }
            if b.tty {
                b.redraw();
            } else {
                let line = format!("{}: {word}", b.lines[i].name);
                let _ = writeln!(b.out, "{line}");
            }
        });
    }

    /// A line to keep, above the machines' lines.
    pub fn note(&self, text: &str) {
        self.with(|b| b.note(text));
    }
}

impl<W: Write> Inner<W> {
    fn render(&self, l: &Line) -> String {
        let width = self.lines.iter().map(|l| l.name.len()).max().unwrap_or(0);
        let mut s = match &l.done {
            Some(word) => format!("{:<width$}  {word}", l.name),
            None => format!(
                "{:<width$} {:>4}s {}",
                l.name,
                l.start.elapsed().as_secs(),
                l.what
            ),
        };
        if let (None, Some(step)) = (&l.done, &l.step) {
            s += ": ";
            s += step;
        }
        crate::host::ui::progress::truncate(&s, WIDTH)
    }

    fn redraw(&mut self) {
        let mut text = String::new();
        if self.drawn > 0 {
            text += &format!("\x1b[{}A", self.drawn);
        }
        for l in &self.lines {
            text += &format!("\r\x1b[2K{}\n", self.render(l));
        }
        self.drawn = self.lines.len();
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    fn note(&mut self, text: &str) {
        if self.tty && self.drawn > 0 {
            let _ = write!(self.out, "\x1b[{}A\r\x1b[J", self.drawn);
            self.drawn = 0;
        }
        let _ = writeln!(self.out, "{text}");
        if self.tty {
            self.redraw();
        }
        let _ = self.out.flush();
    }

    fn event(&mut self, i: usize, e: Event) {
        match e {
            Event::Note(text) => self.note(&text),
            Event::Begin(what) => {
                let l = &mut self.lines[i];
                l.what = what;
                l.step = None;
                l.start = Instant::now();
                self.show(i, true);
            }
            Event::Step(step) => {
                let changed = step.is_some() && self.lines[i].step != step;
                if changed {
                    self.lines[i].step = step;
                }
                self.show(i, changed);
            }
            Event::End => {}
        }
    }

    /// Machine `i`'s line changed (`changed`: a new step, worth a line
    /// without a terminal).
    fn show(&mut self, i: usize, changed: bool) {
        if self.tty {
            self.redraw();
        } else if changed {
            let line = self.render(&self.lines[i]);
            let _ = writeln!(self.out, "{line}");
        }
    }
}

/// One machine's sink on a [`MultiProgress`].
pub struct Lane<'a, W: Write> {
    display: &'a MultiProgress<W>,
    i: usize,
}

impl<W: Write> Sink for Lane<'_, W> {
    fn event(&mut self, e: Event) {
        let i = self.i;
        self.display.with(|b| {
            if i < b.lines.len() {
                b.event(i, e)
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["lab".into(), "lab-2".into()]
    }

    #[test]
    fn without_a_terminal_each_step_is_a_line_named_after_its_machine() {
        let mut out = Vec::new();
        {
            let b = MultiProgress::new(&mut out, false, &names());
            let (mut a, mut c) = (b.lane(0), b.lane(1));
            a.event(Event::Note("Creating machine \"lab\"".into()));
            a.event(Event::Begin("Booting lab (tcg)".into()));
            c.event(Event::Begin("Booting lab-2 (tcg)".into()));
            a.event(Event::Step(Some("data disk /dev/sda: mounted".into())));
            a.event(Event::Step(Some("data disk /dev/sda: mounted".into())));
            a.event(Event::Step(None));
            a.event(Event::End);
            b.finish(0, "Running (first boot, 50.0 s)");
            b.phase(1, "joining the swarm");
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "Creating machine \"lab\"\n\
             lab      0s Booting lab (tcg)\n\
             lab-2    0s Booting lab-2 (tcg)\n\
             lab      0s Booting lab (tcg): data disk /dev/sda: mounted\n\
             lab: Running (first boot, 50.0 s)\n\
             lab-2    0s joining the swarm\n"
        );
    }

    #[test]
    fn on_a_terminal_the_lines_are_redrawn_in_place_under_the_notes() {
        let mut out = Vec::new();
        {
            let b = MultiProgress::new(&mut out, true, &names());
            b.lane(0).event(Event::Begin("Booting lab (tcg)".into()));
            b.lane(1).event(Event::Step(Some("starting QEMU".into())));
            b.note("a note");
            b.finish(0, "Running");
        }
        let text = String::from_utf8(out).unwrap();
        let frames: Vec<&str> = text.split("\x1b[2A").collect();
        assert_eq!(frames.len(), 4, "three redraws and a note: {text:?}");
        assert_eq!(
            frames[0],
            "\r\x1b[2Klab      0s Booting lab (tcg)\n\r\x1b[2Klab-2    0s waiting\n"
        );
        assert_eq!(
            frames[1],
            "\r\x1b[2Klab      0s Booting lab (tcg)\n\r\x1b[2Klab-2    0s waiting: starting QEMU\n"
        );
        assert!(
            frames[2].starts_with("\r\x1b[Ja note\n\r\x1b[2Klab "),
            "{:?}",
            frames[2]
        );
        assert_eq!(
            frames[3],
            "\r\x1b[2Klab    Running\n\r\x1b[2Klab-2    0s waiting: starting QEMU\n"
        );
    }
}
