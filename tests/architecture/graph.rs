//! Which file of the library uses which: every path in the code (`use`
//! trees and paths in expressions) that starts at `crate`, `super`,
//! `self`, a child module or a module brought in by `use`, resolved to
//! the deepest module file it reaches. Test code is left out.

use crate::source::Source;
use std::collections::{BTreeMap, BTreeSet};

/// One file's use of another, at a line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub line: usize,
}

/// The module path of a library file: `src/host/vm/spec.rs` → host::vm::spec.
pub fn module_of(rel: &str) -> Option<Vec<String>> {
    let p = rel.strip_prefix("src/")?.strip_suffix(".rs")?;
    if p.starts_with("bin/") {
        return None;
    }
    let mut segs: Vec<String> = p.split('/').map(str::to_string).collect();
    if segs.last().is_some_and(|l| l == "mod" || l == "lib") {
        segs.pop();
    }
    Some(segs)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path,
    Open,
    Close,
    Comma,
    Star,
    Other,
}

fn tokens(code: &[char]) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let c = code[i];
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < code.len() && (code[i].is_alphanumeric() || code[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(code[start..i].iter().collect()), start));
            continue;
        }
        let t = match c {
            ':' if code.get(i + 1) == Some(&':') => {
                i += 1;
                Tok::Path
            }
            '{' => Tok::Open,
            '}' => Tok::Close,
            ',' => Tok::Comma,
            '*' => Tok::Star,
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            _ => Tok::Other,
        };
        out.push((t, i));
        i += 1;
    }
    out
}

/// A leaf of a path or `use` tree: its segments and the name it binds.
struct Leaf {
    segs: Vec<String>,
    alias: Option<String>,
    at: usize,
}

/// The path starting at token `i` (an identifier): its leaves, and the
/// index after it.
fn path_at(t: &[(Tok, usize)], i: usize, prefix: &[String], out: &mut Vec<Leaf>) -> usize {
    let mut segs = prefix.to_vec();
    let mut j = i;
    loop {
        match t.get(j) {
            Some((Tok::Ident(s), _)) => segs.push(s.clone()),
            Some((Tok::Star, _)) => {
                out.push(Leaf {
                    segs,
                    alias: None,
                    at: t[i].1,
                });
                return j + 1;
            }
            Some((Tok::Open, _)) => {
                j += 1;
                while j < t.len() && t[j].0 != Tok::Close {
                    if matches!(t[j].0, Tok::Ident(_) | Tok::Star) {
                        j = path_at(t, j, &segs, out);
                    } else {
                        j += 1;
                    }
                }
                return j + 1;
            }
            _ => break,
        }
        if t.get(j + 1).map(|x| &x.0) == Some(&Tok::Path) {
            j += 2;
        } else {
            j += 1;
            break;
        }
    }
    let alias = match (t.get(j), t.get(j + 1)) {
        (Some((Tok::Ident(a), _)), Some((Tok::Ident(b), _))) if a == "as" => Some(b.clone()),
        _ => None,
    };
    out.push(Leaf {
        segs,
        alias,
        at: t[i].1,
    });
    j
}

pub struct Modules {
    /// Module path → its file.
    files: BTreeMap<Vec<String>, String>,
}

impl Modules {
    pub fn new(sources: &[Source]) -> Modules {
        let files = sources
            .iter()
            .filter(|s| !s.test_file)
            .filter_map(|s| Some((module_of(&s.rel)?, s.rel.clone())))
            .collect();
        Modules { files }
    }

    /// The absolute module path `segs` means in module `here`, before
    /// trimming to a module.
    fn absolute(
        &self,
        here: &[String],
        segs: &[String],
        aliases: &BTreeMap<String, Vec<String>>,
    ) -> Option<Vec<String>> {
        let first = segs.first()?.as_str();
        let (mut base, rest): (Vec<String>, &[String]) = match first {
            "crate" => (vec![], &segs[1..]),
            "self" => (here.to_vec(), &segs[1..]),
            "super" => {
                let ups = segs.iter().take_while(|s| *s == "super").count();
                (here[..here.len().checked_sub(ups)?].to_vec(), &segs[ups..])
            }
            name if aliases.contains_key(name) => (aliases[name].clone(), &segs[1..]),
            name => {
                let mut child = here.to_vec();
                child.push(name.to_string());
                if !self.files.contains_key(&child) {
                    return None;
                }
                (here.to_vec(), segs)
            }
        };
        base.extend(rest.iter().filter(|s| *s != "self").cloned());
        Some(base)
    }

    /// The deepest module file `abs` reaches.
    fn file_of(&self, abs: &[String]) -> Option<&String> {
        (0..=abs.len())
            .rev()
            .find_map(|n| self.files.get(&abs[..n]))
    }

    /// Every use of one library file by another, outside test code.
    pub fn edges(&self, s: &Source) -> Vec<Edge> {
        let Some(here) = module_of(&s.rel) else {
            return vec![];
        };
        if s.test_file {
            return vec![];
        }
        let code: Vec<char> = s
            .code
            .iter()
            .enumerate()
            .map(|(i, c)| if s.is_test(i) { ' ' } else { *c })
            .collect();
        let t = tokens(&code);
        let mut leaves = Vec::new();
        let mut in_use = Vec::new();
        let mut i = 0;
        while i < t.len() {
            let starts = matches!(&t[i].0, Tok::Ident(_))
                && (i == 0 || t[i - 1].0 != Tok::Path)
                && t.get(i + 1).map(|x| &x.0) == Some(&Tok::Path);
            if starts {
                let is_use = i > 0 && t[i - 1].0 == Tok::Ident("use".into());
                let before = leaves.len();
                i = path_at(&t, i, &[], &mut leaves);
                in_use.extend(std::iter::repeat_n(is_use, leaves.len() - before));
            } else {
                i += 1;
            }
        }
        // What `use` binds to a module: `use crate::host::vm::{self, qmp}`.
        let mut aliases = BTreeMap::new();
        for (leaf, _) in leaves.iter().zip(&in_use).filter(|(_, u)| **u) {
            let Some(abs) = self.absolute(&here, &leaf.segs, &BTreeMap::new()) else {
                continue;
            };
            if self.files.contains_key(&abs) {
                let name = leaf.alias.clone().or_else(|| {
                    let last = leaf.segs.last()?;
                    if last == "self" {
                        leaf.segs.iter().rev().nth(1).cloned()
                    } else {
                        Some(last.clone())
                    }
                });
                if let Some(name) = name {
                    aliases.insert(name, abs);
                }
            }
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for leaf in &leaves {
            let Some(abs) = self.absolute(&here, &leaf.segs, &aliases) else {
                continue;
            };
            let Some(to) = self.file_of(&abs) else {
                continue;
            };
            if *to != s.rel && seen.insert(to.clone()) {
                out.push(Edge {
                    from: s.rel.clone(),
                    to: to.clone(),
                    line: s.line_of(leaf.at),
                });
            }
        }
        out
    }
}

/// The circles among `edges`: each strongly connected set of more than
/// one node (Tarjan's algorithm), sorted.
pub fn circles(edges: &[(String, String)]) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges {
        next.entry(from).or_default().push(to);
        next.entry(to).or_default();
    }
    struct T<'a> {
        next: &'a BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for &w in &t.next[v] {
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut set = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                set.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if set.len() > 1 {
                set.sort();
                t.out.push(set);
            }
        }
    }
    let mut t = T {
        next: &next,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for &v in next.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out.sort();
    t.out
}

/// A circle among the parts of one folder.
pub struct Circle {
    /// The folder: `src/host/`.
    pub folder: String,
    /// Its files and subfolders in the circle: `network`, `vm`.
    pub parts: Vec<String>,
    /// The uses that make it.
    pub edges: Vec<Edge>,
}

/// The circles of files, folder by folder: in every folder, its files
/// and subfolders (a subfolder as one part, with everything under it)
/// use each other without a circle. A folder's own `mod.rs` (or
/// `lib.rs`) is left out: it is the face of its parts, using them and
/// used by them.
pub fn folder_circles(edges: &[Edge]) -> Vec<Circle> {
    let folders: BTreeSet<String> = edges
        .iter()
        .flat_map(|e| [&e.from, &e.to])
        .flat_map(|f| {
            let parts: Vec<&str> = f.split('/').collect();
            (1..parts.len()).map(move |n| format!("{}/", parts[..n].join("/")))
        })
        .collect();
    let part = |folder: &str, file: &str| -> Option<String> {
        let rest = file.strip_prefix(folder)?;
        if rest == "mod.rs" || rest == "lib.rs" {
            return None;
        }
        let first = rest.split('/').next()?;
        Some(first.strip_suffix(".rs").unwrap_or(first).to_string())
    };
    let mut out = Vec::new();
    for folder in &folders {
        let inside: Vec<(String, String, &Edge)> = edges
            .iter()
            .filter_map(|e| Some((part(folder, &e.from)?, part(folder, &e.to)?, e)))
            .filter(|(a, b, _)| a != b)
            .collect();
        let pairs: Vec<(String, String)> = inside
            .iter()
            .map(|(a, b, _)| (a.clone(), b.clone()))
            .collect();
        for parts in circles(&pairs) {
            let edges = inside
                .iter()
                .filter(|(a, b, _)| parts.contains(a) && parts.contains(b))
                .map(|(_, _, e)| (*e).clone())
                .collect();
            out.push(Circle {
                folder: folder.clone(),
                parts,
                edges,
            });
        }
    }
    out
}
