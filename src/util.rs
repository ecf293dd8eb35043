//! Small helpers both sides use that belong to neither: a PATH lookup, a
//! TCP reachability check, and text made safe to print on a terminal.

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

/// Whether something accepts TCP connections at `addr` (`IP:PORT`).
pub fn tcp_open(addr: &str, timeout: Duration) -> bool {
    addr.parse()
        .ok()
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, timeout).is_ok())
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
}
