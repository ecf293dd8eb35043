//! The project's Rust files as the checks read them: the text as it is,
//! the code with comments and literals blanked (char for char, so an
//! index or line in one is the same in the other), and which parts are
//! test code (`#[cfg(test)]` items, and files declared by a
//! `#[cfg(test)] mod x;`).

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub struct Source {
    /// Relative to the repository, with `/`: `src/host/vm/spec.rs`.
    pub rel: String,
    pub raw: Vec<char>,
    /// `raw` with comments and the insides of string, byte-string and
    /// char literals replaced by spaces (newlines kept).
    pub code: Vec<char>,
    /// The whole file is test code.
    pub test_file: bool,
    /// Char ranges of `#[cfg(test)]` items in it.
    pub test_ranges: Vec<Range<usize>>,
}

impl Source {
    pub fn new(rel: &str, text: &str) -> Source {
        let raw: Vec<char> = text.chars().collect();
        let code = blank(&raw);
        let mut s = Source {
            rel: rel.to_string(),
            raw,
            code,
            test_file: false,
            test_ranges: Vec::new(),
        };
        s.test_ranges = cfg_test_items(&s.code)
            .into_iter()
            .map(|i| i.range)
            .collect();
        s.test_file = text.contains("#![cfg(test)]");
        s
    }

    /// 1-based line of char index `i`.
    pub fn line_of(&self, i: usize) -> usize {
        1 + self.raw[..i.min(self.raw.len())]
            .iter()
            .filter(|c| **c == '\n')
            .count()
    }

    /// Whether char index `i` is test code.
    pub fn is_test(&self, i: usize) -> bool {
        self.test_file || self.test_ranges.iter().any(|r| r.contains(&i))
    }

    /// The line count, as `wc -l` gives it.
    pub fn lines(&self) -> usize {
        self.raw.iter().filter(|c| **c == '\n').count()
    }

    /// Char indices where `needle` starts in `hay` (`raw` or `code`).
    pub fn find(hay: &[char], needle: &str) -> Vec<usize> {
        let n: Vec<char> = needle.chars().collect();
        (0..hay.len().saturating_sub(n.len() - 1))
            .filter(|&i| hay[i..].starts_with(&n))
            .collect()
    }

    /// The files this one declares with `#[cfg(test)] mod NAME;` (taking a
    /// `#[path = "…"]` into account), relative to the repository.
    pub fn test_children(&self) -> Vec<String> {
        let dir = Path::new(&self.rel).parent().unwrap_or(Path::new(""));
        let stem = Path::new(&self.rel).file_stem().unwrap().to_string_lossy();
        let own_dir = if ["mod", "lib", "main"].contains(&stem.as_ref()) {
            dir.to_path_buf()
        } else {
            dir.join(stem.as_ref())
        };
        let mut out = Vec::new();
        for item in cfg_test_items(&self.code) {
            let Some(name) = item.module_decl else {
                continue;
            };
            let path_attr = item.attrs.iter().find_map(|r| {
                let text: String = self.raw[r.clone()].iter().collect();
                let rest = text.trim_start_matches('#').trim().strip_prefix('[')?;
                let rest = rest.trim_start().strip_prefix("path")?;
                let q = rest.find('"')?;
                let end = rest[q + 1..].find('"')?;
                Some(rest[q + 1..q + 1 + end].to_string())
            });
            let file = match path_attr {
                Some(p) => dir.join(p),
                None => {
                    let flat = own_dir.join(format!("{name}.rs"));
                    if Path::new(crate::ROOT).join(&flat).exists() {
                        flat
                    } else {
                        own_dir.join(&name).join("mod.rs")
                    }
                }
            };
            out.push(file.to_string_lossy().replace('\\', "/"));
        }
        out
    }

    /// Every file this one declares with `mod NAME;` (used for test files,
    /// whose children are test code too).
    fn children(&self) -> Vec<String> {
        let dir = Path::new(&self.rel).parent().unwrap_or(Path::new(""));
        let stem = Path::new(&self.rel).file_stem().unwrap().to_string_lossy();
        let own = if stem == "mod" {
            dir.to_path_buf()
        } else {
            dir.join(stem.as_ref())
        };
        let code: String = self.code.iter().collect();
        code.lines()
            .filter_map(|l| {
                let l = l.trim().strip_prefix("pub ").unwrap_or(l.trim());
                let name = l.strip_prefix("mod ")?.strip_suffix(';')?.trim();
                Some(own.join(format!("{name}.rs")).to_string_lossy().to_string())
            })
            .collect()
    }
}

/// Every `.rs` file under `dirs` (relative to `root`), skipping build
/// output, fuzz corpora and hidden folders; sorted.
pub fn rust_files(root: &Path, dirs: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if p.is_dir() {
                if !(name.starts_with('.') || name == "target" || name == "corpus") {
                    walk(&p, out);
                }
            } else if name.ends_with(".rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for d in dirs {
        walk(&root.join(d), &mut out);
    }
    out.sort();
    out
}

/// Every Rust file under `dirs`, read, with test files marked: those a
/// `#[cfg(test)] mod x;` declares, and what they declare in turn.
pub fn load(dirs: &[&str]) -> Vec<Source> {
    let root = Path::new(crate::ROOT);
    let mut all: Vec<Source> = rust_files(root, dirs)
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{rel}: {e}"));
            Source::new(&rel, &text)
        })
        .collect();
    let mut tests: BTreeSet<String> = all.iter().flat_map(|s| s.test_children()).collect();
    loop {
        let more: BTreeSet<String> = all
            .iter()
            .filter(|s| tests.contains(&s.rel))
            .flat_map(|s| s.children())
            .filter(|c| !tests.contains(c))
            .collect();
        if more.is_empty() {
            break;
        }
        tests.extend(more);
    }
    for s in &mut all {
        if tests.contains(&s.rel) {
            s.test_file = true;
        }
    }
    all
}

/// Comments and the insides of literals blanked, char for char.
pub fn blank(s: &[char]) -> Vec<char> {
    let mut out = s.to_vec();
    let n = s.len();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let wipe = |out: &mut Vec<char>, r: Range<usize>| {
        for c in &mut out[r] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let mut i = 0;
    while i < n {
        let c = s[i];
        let next = s.get(i + 1).copied();
        let prev_ident = i > 0 && ident(s[i - 1]);
        if c == '/' && next == Some('/') {
            let end = s[i..].iter().position(|c| *c == '\n').map_or(n, |p| i + p);
            wipe(&mut out, i..end);
            i = end;
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            let mut j = i;
            while j < n {
                if s[j] == '/' && s.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if s[j] == '*' && s.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            wipe(&mut out, i..j.min(n));
            i = j;
        } else if (c == 'r' || (c == 'b' && next == Some('r'))) && !prev_ident {
            // A raw string: r"…", r#"…"#, br"…".
            let start = if c == 'b' { i + 2 } else { i + 1 };
            let hashes = s[start..].iter().take_while(|c| **c == '#').count();
            if s.get(start + hashes) != Some(&'"') {
                i += 1;
                continue;
            }
            let body = start + hashes + 1;
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let end = (body..n).find(|&j| s[j..].starts_with(&close)).unwrap_or(n);
            wipe(&mut out, body..end);
            i = end + close.len();
        } else if c == '"' {
            let mut j = i + 1;
            while j < n && s[j] != '"' {
                j += if s[j] == '\\' { 2 } else { 1 };
            }
            wipe(&mut out, i + 1..j.min(n));
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F}', b'x'), or a lifetime.
            if next == Some('\\') {
                let end = (i + 2..n).find(|&j| s[j] == '\'').unwrap_or(n);
                wipe(&mut out, i + 1..end);
                i = end + 1;
            } else if s.get(i + 2) == Some(&'\'') {
                wipe(&mut out, i + 1..i + 2);
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// An item under `#[cfg(test)]`.
pub struct TestItem {
    /// From the attribute to the item's end (its `;` or closing brace).
    pub range: Range<usize>,
    /// The other attributes between it and the item (`#[path = …]`).
    pub attrs: Vec<Range<usize>>,
    /// `NAME` when the item is `mod NAME;`.
    pub module_decl: Option<String>,
}

fn skip_ws(code: &[char], mut i: usize) -> usize {
    while i < code.len() && code[i].is_whitespace() {
        i += 1;
    }
    i
}

/// The end of the bracketed group opening at `i` (`[`, `(` or `{`).
fn matching(code: &[char], i: usize) -> usize {
    let (open, close) = match code[i] {
        '[' => ('[', ']'),
        '(' => ('(', ')'),
        _ => ('{', '}'),
    };
    let mut depth = 0;
    for (j, c) in code.iter().enumerate().skip(i) {
        if *c == open {
            depth += 1;
        } else if *c == close {
            depth -= 1;
            if depth == 0 {
                return j + 1;
            }
        }
    }
    code.len()
}

/// Every `#[cfg(test)]` item in blanked code.
pub fn cfg_test_items(code: &[char]) -> Vec<TestItem> {
    let squeezed = |from: usize| -> String {
        code[from..(from + 40).min(code.len())]
            .iter()
            .filter(|c| !c.is_whitespace())
            .collect()
    };
    let mut out = Vec::new();
    for i in (0..code.len()).filter(|&i| code[i] == '#') {
        if !squeezed(i).starts_with("#[cfg(test)]") {
            continue;
        }
        let mut j = matching(code, skip_ws(code, i + 1));
        let mut attrs = Vec::new();
        loop {
            j = skip_ws(code, j);
            if code.get(j) == Some(&'#') {
                let k = skip_ws(code, j + 1);
                let end = matching(code, k);
                attrs.push(j..end);
                j = end;
            } else {
                break;
            }
        }
        // The item: up to its first `;` or the end of its first `{…}`.
        let start = j;
        let mut k = j;
        while k < code.len() && code[k] != ';' && code[k] != '{' {
            k += 1;
        }
        let end = if code.get(k) == Some(&'{') {
            matching(code, k)
        } else {
            k + 1
        };
        let head: String = code[start..k.min(code.len())].iter().collect();
        let words: Vec<&str> = head.split_whitespace().collect();
        let module_decl = match (code.get(k), words.as_slice()) {
            (Some(';'), ["mod", name]) | (Some(';'), ["pub", "mod", name]) => {
                Some(name.to_string())
            }
            _ => None,
        };
        out.push(TestItem {
            range: i..end.min(code.len()),
            attrs,
            module_decl,
        });
    }
    out
}
