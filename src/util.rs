//! Small helpers both sides use that belong to neither: a PATH lookup, a
//! TCP reachability check, and text made safe to print on a terminal
//! (one line with [`printable`], a log of many with [`printable_text`] and
//! [`PrintableStream`]).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first file `name` in a PATH directory.
pub fn which(name: &Path) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether a terminal would act on `c` rather than show it: the C0
/// controls, DEL and the C1 controls (`ESC`, the 8-bit `CSI`…), and the
/// bidirectional overrides and isolates that reorder the text around them.
pub fn drives_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with each character a terminal would act on (see
/// [`drives_terminal`]) written as an escape instead: `\x1b` below 0x80,
/// `\u{9b}` above. Text read off a disk image goes through this before it
/// is printed, so a key comment or a label cannot set the window title,
/// clear the screen or hide what follows it.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(drives_terminal) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match u32::from(c) {
            _ if !drives_terminal(c) => out.push(c),
            n if n < 0x80 => {
                let _ = write!(out, "\\x{n:02x}");
            }
            n => {
                let _ = write!(out, "\\u{{{n:x}}}");
            }
        }
    }
    Cow::Owned(out)
}

/// `s` made safe to print as lines of text (a console log, a guest's
/// report): as [`printable`], but line feeds and tabs stay as they are,
/// and carriage returns just before a line feed (a serial console ends
/// its lines with `\r\n`) are dropped. A carriage return anywhere else
/// would let a line overwrite itself on a terminal: it is escaped.
pub fn printable_text(s: &str) -> Cow<'_, str> {
    let keep = |c: char| c == '\n' || c == '\t';
    if !s.chars().any(|c| drives_terminal(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    while let Some(i) = rest.find(|c: char| drives_terminal(c) && !keep(c)) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let crs = rest.len() - rest.trim_start_matches('\r').len();
        if crs > 0 && rest[crs..].starts_with('\n') {
            rest = &rest[crs..]; // the line feed is kept next round
            continue;
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push_str(&printable(&rest[..c.len_utf8()]));
        rest = &rest[c.len_utf8()..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A guest's text arriving in pieces (a console log followed as it
/// grows), decoded lossily and made printable as [`printable_text`]
/// does. A piece may end inside a UTF-8 sequence or between a carriage
/// return and its line feed: that end is held back for the next piece.
#[derive(Debug, Default)]
pub struct PrintableStream {
    held: Vec<u8>,
}

impl PrintableStream {
    /// The printable text of `bytes` and what was held back before them.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.held.extend_from_slice(bytes);
        let mut cut = self.held.len() - incomplete_utf8_tail(&self.held);
        while cut > 0 && self.held[cut - 1] == b'\r' {
            cut -= 1;
        }
        let rest = self.held.split_off(cut);
        let text = std::mem::replace(&mut self.held, rest);
        printable_text(&String::from_utf8_lossy(&text)).into_owned()
    }

    /// What is still held back, at the end of the text.
    pub fn finish(&mut self) -> String {
        let text = std::mem::take(&mut self.held);
        printable_text(&String::from_utf8_lossy(&text)).into_owned()
    }
}

/// How many bytes at the end of `b` start a UTF-8 sequence that has not
/// ended yet (0 to 3).
fn incomplete_utf8_tail(b: &[u8]) -> usize {
    for back in 1..=b.len().min(3) {
        let byte = b[b.len() - back];
        if byte & 0xc0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let need = match byte {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        return if need > back { back } else { 0 };
    }
    0
}

/// Whether something accepts TCP connections at `addr` (`IP:PORT`).
pub fn tcp_open(addr: &str, timeout: Duration) -> bool {
    addr.parse()
        .ok()
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, timeout).is_ok())
}

/// `s` single-quoted for a POSIX shell (sh, bash, tcsh): `'` becomes
/// `'\''`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A path inside a QEMU option list (`-drive file=…,format=raw`), where
/// a comma must be doubled.
pub fn qemu_opt_path(p: &std::path::Path) -> String {
    p.display().to_string().replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_would_drive_a_terminal_and_nothing_else() {
        assert!(matches!(printable("plain ü ✓ text"), Cow::Borrowed(_)));
        assert_eq!(
            printable("a\u{1b}[2J\u{7}\n\t\u{7f}\u{9b}\u{202e}z"),
            r"a\x1b[2J\x07\x0a\x09\x7f\u{9b}\u{202e}z"
        );
        assert!(!printable("\u{2067}x\u{85}").chars().any(drives_terminal));
    }

    #[test]
    fn printable_text_keeps_lines_and_escapes_the_rest() {
        assert!(matches!(printable_text("a\n\tb\n"), Cow::Borrowed(_)));
        assert_eq!(
            printable_text("boot\r\nlogin\r\r\n\x1b[31mred\rover\u{9b}2J\r"),
            "boot\nlogin\n\\x1b[31mred\\x0dover\\u{9b}2J\\x0d"
        );
        let s = printable_text("x\u{202e}\u{7}\n");
        assert_eq!(s, "x\\u{202e}\\x07\n");
    }

    #[test]
    fn a_stream_split_anywhere_reads_as_the_whole() {
        let text = "caf\u{e9} \u{2713}\r\nesc \x1b[0m end\r\n\u{1F600}!\n".as_bytes();
        let mut bad = text.to_vec();
        bad.insert(5, 0xff); // one byte that is not UTF-8
        for input in [text.to_vec(), bad] {
            let whole = printable_text(&String::from_utf8_lossy(&input)).into_owned();
            for size in 1..input.len() {
                let mut s = PrintableStream::default();
                let mut got: String = input.chunks(size).map(|c| s.push(c)).collect();
                got += &s.finish();
                assert_eq!(got, whole, "pieces of {size}");
            }
        }
        let mut s = PrintableStream::default();
        assert_eq!(s.push(b"a\r"), "a");
        assert_eq!(s.finish(), "\\x0d");
    }
}
