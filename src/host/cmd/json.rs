//! JSON for a terminal: serde_json's pretty layout, with the characters it
//! leaves raw that a terminal would act on (DEL, the C1 controls, the
//! bidirectional overrides; see [`crate::util::drives_terminal`]) written
//! as `\uXXXX` escapes too. A JSON reader gets exactly the same strings.

use crate::util::drives_terminal;
use serde_json::ser::{Formatter, PrettyFormatter};
use std::io::{self, Write};

/// A report that could not be written as JSON (a value serde cannot
/// encode: b2d's reports have none, and this says so if one ever does).
#[derive(Debug, thiserror::Error)]
#[error("cannot write the report as JSON: {0}")]
pub struct JsonError(#[from] serde_json::Error);

/// `v` as pretty JSON that is safe to print on a terminal.
pub fn to_string_pretty<T: serde::Serialize + ?Sized>(v: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Safe(PrettyFormatter::new()));
    v.serialize(&mut ser)?;
    // serde_json writes UTF-8, and the escapes are ASCII.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// [`PrettyFormatter`]'s layout; strings escaped as described above.
struct Safe<'a>(PrettyFormatter<'a>);

impl Formatter for Safe<'_> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if drives_terminal(c) {
                w.write_all(&fragment.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_json_as_serde_but_nothing_a_terminal_acts_on() {
        let v = serde_json::json!({
            "plain": ["a", 1, null, {"k": "ü ✓"}],
            "evil": "t\u{1b}]0;x\u{7}\u{7f}\u{9b}2J\u{202e}z\"\\",
        });
        let safe = to_string_pretty(&v).unwrap();
        let raw = |c: char| c != '\n' && drives_terminal(c);
        assert!(!safe.chars().any(raw), "{safe:?}");
        assert!(
            safe.contains(r#""t\u001b]0;x\u0007\u007f\u009b2J\u202ez\"\\""#),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
        let plain = serde_json::json!({"a": [1, "ü"], "b": {}});
        assert_eq!(
            to_string_pretty(&plain).unwrap(),
            serde_json::to_string_pretty(&plain).unwrap()
        );
    }
}
