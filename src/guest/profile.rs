//! `/var/lib/boot2docker/profile`: KEY=VALUE lines, parsed and never
//! sourced. Values may be quoted with '…' (literal) or "…" (backslash
//! escapes `\" \\ \$ \``), may span lines inside quotes, and are never
//! expanded. `export KEY=…` is tolerated, `#` starts a comment. Bad lines
//! are reported with their line number and skipped.

use std::collections::BTreeMap;
use std::path::Path;

/// A parsed profile.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Profile {
    pub vars: BTreeMap<String, String>,
    /// (1-based line number, what is wrong).
    pub errors: Vec<(usize, LineError)>,
}

/// What is wrong with a line of the profile (it is skipped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not KEY=VALUE: {0}")]
    NotKeyValue(String),
    #[error("bad variable name \"{}\"", .0.escape_debug())]
    BadName(String),
    #[error("{key}: unterminated quote")]
    Unterminated { key: String },
    #[error("{key}: trailing backslash")]
    TrailingBackslash { key: String },
    #[error(
        "{key}: unexpected text after the value: \"{}\" (quote values with spaces)",
        rest.escape_debug()
    )]
    TextAfterValue { key: String, rest: String },
}

/// Why a word list (EXTRA_ARGS) does not split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WordsError {
    #[error("unterminated '")]
    UnterminatedSingle,
    #[error("unterminated \"")]
    UnterminatedDouble,
    #[error("trailing backslash")]
    TrailingBackslash,
}

impl Profile {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// EXTRA_ARGS split into dockerd arguments.
    pub fn extra_args(&self) -> Result<Vec<String>, WordsError> {
        split_words(self.get("EXTRA_ARGS").unwrap_or(""))
    }
}

/// Parse one shell-style word list: whitespace separates words outside
/// quotes; quotes and backslashes work as in sh; nothing is expanded.
pub fn split_words(s: &str) -> Result<Vec<String>, WordsError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(WordsError::UnterminatedSingle),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => word.push(e),
                            Some('\n') => {}
                            Some(o) => {
                                word.push('\\');
                                word.push(o);
                            }
                            None => return Err(WordsError::UnterminatedDouble),
                        },
                        Some(c) => word.push(c),
                        None => return Err(WordsError::UnterminatedDouble),
                    }
                },
                '\\' => match chars.next() {
                    Some('\n') => {}
                    Some(e) => word.push(e),
                    None => return Err(WordsError::TrailingBackslash),
                },
                c => word.push(c),
            }
        }
        out.push(word);
    }
}

fn valid_key(k: &str) -> bool {
    let mut cs = k.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parse profile text.
pub fn parse(text: &str) -> Profile {
    let mut p = Profile::default();
    let lines: Vec<&str> = text.split('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let mut line = lines[i].trim_start().to_string();
        i += 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("export") {
            if rest.starts_with(char::is_whitespace) {
                line = rest.trim_start().to_string();
            }
        }
        let Some((key, _)) = line.split_once('=') else {
            p.errors
                .push((lineno, LineError::NotKeyValue(line.trim().to_string())));
            continue;
        };
        let key = key.to_string();
        if !valid_key(&key) {
            p.errors.push((lineno, LineError::BadName(key)));
            continue;
        }
        // Pull in continuation lines while a quote is open. The quotes
        // are followed as the text grows, so the value is parsed once.
        let mut value = line[key.len() + 1..].to_string();
        let mut quotes = Quotes::default();
        quotes.follow(&value);
        while quotes.open() && i < lines.len() {
            value.push('\n');
            value.push_str(lines[i]);
            quotes.follow(&value[value.len() - lines[i].len() - 1..]);
            i += 1;
        }
        let parsed = parse_value(&value);
        match parsed {
            Ok(v) => {
                p.vars.insert(key, v);
            }
            Err(ValueError::Open) => p.errors.push((lineno, LineError::Unterminated { key })),
            Err(ValueError::TrailingBackslash) => p
                .errors
                .push((lineno, LineError::TrailingBackslash { key })),
            Err(ValueError::TextAfter(rest)) => p
                .errors
                .push((lineno, LineError::TextAfterValue { key, rest })),
        }
    }
    p
}

/// Where [`parse_value`] would be after some text: inside a quote or
/// not. It ends a value [`ValueError::Open`] exactly when it ends inside
/// one; fed a value piece by piece it says so in time linear in the value.
#[derive(Debug, Default)]
struct Quotes {
    single: bool,
    double: bool,
    /// After a backslash: the next character is taken as it is.
    escaped: bool,
    /// Past the value's end (unquoted whitespace): quotes no longer count.
    ended: bool,
}

impl Quotes {
    fn follow(&mut self, text: &str) {
        for c in text.chars() {
            if self.ended {
                return;
            }
            if self.escaped {
                self.escaped = false;
            } else if self.single {
                self.single = c != '\'';
            } else if self.double {
                match c {
                    '"' => self.double = false,
                    '\\' => self.escaped = true,
                    _ => {}
                }
            } else {
                match c {
                    '\'' => self.single = true,
                    '"' => self.double = true,
                    '\\' => self.escaped = true,
                    c if c.is_whitespace() => self.ended = true,
                    _ => {}
                }
            }
        }
    }

    /// Whether the value so far ends inside a quote (a backslash pending
    /// inside double quotes counts; one outside is a trailing backslash).
    fn open(&self) -> bool {
        self.single || self.double
    }
}

enum ValueError {
    /// A quote is still open at the end of the text.
    Open,
    TrailingBackslash,
    /// Text after the value's first unquoted whitespace.
    TextAfter(String),
}

/// One value: quoted parts and bare text concatenated up to the first
/// unquoted whitespace; after that only a `#` comment may follow.
fn parse_value(v: &str) -> Result<String, ValueError> {
    let mut out = String::new();
    let mut chars = v.chars();
    let mut rest = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return Err(ValueError::Open),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                        Some('\n') => {}
                        Some(o) => {
                            out.push('\\');
                            out.push(o);
                        }
                        None => return Err(ValueError::Open),
                    },
                    Some(c) => out.push(c),
                    None => return Err(ValueError::Open),
                }
            },
            '\\' => match chars.next() {
                Some(e) => out.push(e),
                None => return Err(ValueError::TrailingBackslash),
            },
            c if c.is_whitespace() => {
                rest = chars.collect();
                break;
            }
            c => out.push(c),
        }
    }
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(out)
    } else {
        Err(ValueError::TextAfter(rest.to_string()))
    }
}

/// Read and parse a profile file; a missing file is an empty profile.
/// Errors are logged with the file name and line number.
pub fn read(path: &Path) -> Profile {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Profile::default(),
        Err(e) => {
            log::warn!("cannot read {}: {e}", path.display());
            return Profile::default();
        }
    };
    let p = parse(&text);
    for (line, msg) in &p.errors {
        log::warn!("{}:{line}: {msg} (line ignored)", path.display());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot2docker_style_profile() {
        let p = parse(
            "# docker-machine profile\nEXTRA_ARGS='\n--label provider=qemu\n--insecure-registry \"my reg\"\n'\n\
             CACHE=\"/var/lib/cache\" # trailing comment\nexport DOCKER_TLS=auto\nDOCKER_HOST='-H tcp://0.0.0.0:2376'\n\
             EMPTY=\nMIXED=a'b c'\"d\\\"e\"\n",
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.get("CACHE"), Some("/var/lib/cache"));
        assert_eq!(p.get("DOCKER_TLS"), Some("auto"));
        assert_eq!(p.get("DOCKER_HOST"), Some("-H tcp://0.0.0.0:2376"));
        assert_eq!(p.get("EMPTY"), Some(""));
        assert_eq!(p.get("MIXED"), Some("ab cd\"e"));
        assert_eq!(
            p.extra_args().unwrap(),
            vec!["--label", "provider=qemu", "--insecure-registry", "my reg"]
        );
    }

    #[test]
    fn nothing_is_expanded_or_executed() {
        let p = parse("A=$(reboot)\nB=\"$HOME `id`\"\n");
        assert_eq!(p.get("A"), Some("$(reboot)"));
        assert_eq!(p.get("B"), Some("$HOME `id`"));
    }

    #[test]
    fn bad_lines_are_reported_with_line_numbers() {
        let p = parse("OK=1\njust words\n1BAD=x\nSPACE=a b\nOPEN='never closed\nLAST=2");
        assert_eq!(p.get("OK"), Some("1"));
        assert_eq!(p.errors[0].0, 2);
        assert_eq!(p.errors[1].0, 3);
        assert_eq!(p.errors[2].0, 4);
        assert_eq!(p.errors[3].0, 5);
        assert!(p.errors[3].1.to_string().contains("unterminated"));
        assert_eq!(p.errors.len(), 4);
        // The open quote swallowed the rest of the file.
        assert_eq!(p.get("LAST"), None);
    }

    #[test]
    fn an_open_quote_over_many_lines_costs_linear_time() {
        // Each continuation line used to re-parse the whole value so far:
        // 5000 lines took seconds, a 1 MiB profile hours of boot.
        let body = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n".repeat(5_000);
        let text = format!("A='\n{body}'\nB=1\nC=\"open\n{body}");
        let start = std::time::Instant::now();
        let p = parse(&text);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(p.get("A"), Some(format!("\n{body}").as_str()));
        assert_eq!(p.get("B"), Some("1"));
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors.first());
        assert_eq!(p.errors[0].0, 5_004);
        assert!(p.errors[0].1.to_string().contains("C: unterminated"));
    }

    #[test]
    fn word_splitting() {
        assert_eq!(
            split_words(" a  'b c' \"d\\\"\" e\\ f ''").unwrap(),
            vec!["a", "b c", "d\"", "e f", ""]
        );
        assert!(split_words("'x").is_err());
        assert!(split_words("").unwrap().is_empty());
    }

    #[test]
    fn missing_file_is_empty() {
        assert_eq!(read(Path::new("/nonexistent/profile")), Profile::default());
    }
}
