//! The architecture's rules (ARCHITECTURE.md, "Rules"), checked on the
//! source tree: each test names every file and line that breaks its rule.

mod graph;
mod selftest;
mod source;

use graph::{Edge, Modules};
use source::Source;
use std::collections::BTreeSet;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// No Rust file is longer than this.
const MAX_LINES: usize = 500;

/// Where every Rust file of the project lives (the fuzz targets too).
const ALL_RUST: &[&str] = &["src", "tests", "qemu-tests", "bench", "examples", "fuzz"];

/// The one runner for external programs: `sys::run_tool` (`run.rs`) over
/// the `Sys::run` seam, whose Linux side (`linux.rs`) is where a process
/// is made. Nothing else in `src/` builds a `std::process::Command`.
const RUNNERS: &[&str] = &["src/sys/run.rs", "src/sys/linux.rs"];

/// Layers both sides build on; they name neither side. `fuzzing.rs` is
/// the fuzz targets' entry into both and `lib.rs` declares them.
fn shared_layer(rel: &str) -> bool {
    rel.starts_with("src/")
        && !["src/host/", "src/guest/", "src/bin/"]
            .iter()
            .any(|p| rel.starts_with(p))
        && !["src/fuzzing.rs", "src/lib.rs"].contains(&rel)
}

fn fail_if_any(what: &str, found: Vec<String>) {
    assert!(found.is_empty(), "{what}:\n  {}\n", found.join("\n  "));
}

fn library() -> (Vec<Source>, Vec<Edge>) {
    let sources = source::load(&["src"]);
    let modules = Modules::new(&sources);
    let edges = sources.iter().flat_map(|s| modules.edges(s)).collect();
    (sources, edges)
}

/// `needle` in `s`'s text, comments and doc links included.
fn mentions(s: &Source, needle: &str) -> Vec<String> {
    Source::find(&s.raw, needle)
        .into_iter()
        .map(|i| format!("{}:{}: names `{needle}`", s.rel, s.line_of(i)))
        .collect()
}

#[test]
fn host_and_guest_never_name_each_other() {
    let (sources, edges) = library();
    let mut found = Vec::new();
    for s in &sources {
        if s.rel.starts_with("src/host/") {
            found.extend(mentions(s, "crate::guest"));
        }
        if s.rel.starts_with("src/guest/") {
            found.extend(mentions(s, "crate::host"));
        }
    }
    for e in &edges {
        let across = (e.from.starts_with("src/host/") && e.to.starts_with("src/guest/"))
            || (e.from.starts_with("src/guest/") && e.to.starts_with("src/host/"));
        let line = format!("{}:{}: uses {}", e.from, e.line, e.to);
        if across
            && !found
                .iter()
                .any(|f| f.starts_with(&format!("{}:{}:", e.from, e.line)))
        {
            found.push(line);
        }
    }
    fail_if_any(
        "src/host and src/guest name each other (what both sides agree on goes in src/wire or src/disk)",
        found,
    );
}

#[test]
fn shared_layers_name_neither_side() {
    let (sources, edges) = library();
    let mut found = Vec::new();
    for s in sources.iter().filter(|s| shared_layer(&s.rel)) {
        found.extend(mentions(s, "crate::host"));
        found.extend(mentions(s, "crate::guest"));
    }
    for e in edges.iter().filter(|e| shared_layer(&e.from)) {
        if e.to.starts_with("src/host/") || e.to.starts_with("src/guest/") {
            found.push(format!("{}:{}: uses {}", e.from, e.line, e.to));
        }
    }
    found.sort();
    found.dedup();
    fail_if_any(
        "a shared layer (disk, wire, sys, tls, mux, util, …) depends on host or guest",
        found,
    );
}

#[test]
fn no_file_over_500_lines() {
    let found: Vec<String> = source::load(ALL_RUST)
        .iter()
        .filter(|s| s.lines() > MAX_LINES)
        .map(|s| format!("{}: {} lines", s.rel, s.lines()))
        .collect();
    fail_if_any(
        &format!("files over {MAX_LINES} lines (split them by what they hold)"),
        found,
    );
}

/// Char indices of `Command::new` (spaces allowed around `::`) in code.
fn command_new(code: &[char]) -> Vec<usize> {
    let ident = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
    let skip_ws = |mut i: usize| {
        while code.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        i
    };
    Source::find(code, "Command")
        .into_iter()
        .filter(|&i| {
            if i > 0 && ident(code.get(i - 1)) {
                return false;
            }
            let j = skip_ws(i + "Command".len());
            if !code[j.min(code.len())..].starts_with(&[':', ':']) {
                return false;
            }
            let k = skip_ws(j + 2);
            code[k.min(code.len())..].starts_with(&['n', 'e', 'w']) && !ident(code.get(k + 3))
        })
        .collect()
}

#[test]
fn external_programs_run_only_through_the_runner() {
    let mut found = Vec::new();
    for s in source::load(&["src"]) {
        if RUNNERS.contains(&s.rel.as_str()) {
            continue;
        }
        for i in command_new(&s.code) {
            if !s.is_test(i) {
                found.push(format!("{}:{}: Command::new", s.rel, s.line_of(i)));
            }
        }
    }
    fail_if_any(
        &format!(
            "programs started outside the runner ({}; tests may run tools)",
            RUNNERS.join(", ")
        ),
        found,
    );
}

fn architecture_md() -> String {
    std::fs::read_to_string(format!("{ROOT}/ARCHITECTURE.md")).expect("ARCHITECTURE.md")
}

/// Whether `doc` names `name` (a path under src/host/) as a whole word:
/// `vm/spec.rs` is named by `` `vm/spec.rs` `` or `src/host/vm/spec.rs`,
/// not by `xvm/spec.rs`.
fn names(doc: &str, name: &str) -> bool {
    doc.match_indices(name).any(|(i, _)| {
        let before = doc[..i].chars().last();
        let word = |c: char| c.is_alphanumeric() || c == '_' || c == '/' || c == '-';
        before.is_none_or(|c| !word(c)) || doc[..i].ends_with("host/")
    })
}

#[test]
fn every_host_module_is_named_in_architecture_md() {
    let doc = architecture_md();
    let found: Vec<String> = source::load(&["src/host"])
        .iter()
        .filter(|s| !s.test_file && s.rel != "src/host/mod.rs")
        .filter_map(|s| {
            let rel = s.rel.strip_prefix("src/host/").unwrap();
            let name = rel.strip_suffix("mod.rs").unwrap_or(rel);
            (!names(&doc, name)).then(|| format!("{}: `{name}` is not in ARCHITECTURE.md", s.rel))
        })
        .collect();
    fail_if_any("host modules ARCHITECTURE.md does not name", found);
}

/// `SshConfig` → `ssh-config`.
fn kebab(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('-');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The visible verbs of an enum of `cli.rs`, subcommands expanded
/// (`swarm create`).
fn verbs_of(code: &str, enum_name: &str, prefix: &str) -> Vec<String> {
    let head = format!("pub enum {enum_name} {{");
    let start = code
        .find(&head)
        .unwrap_or_else(|| panic!("cli.rs: no `{head}`"))
        + head.len();
    let (mut depth, mut attrs, mut out) = (1, String::new(), Vec::new());
    for line in code[start..].lines() {
        if depth == 1 {
            let t = line.trim();
            if t.starts_with("#[") {
                attrs.push_str(t);
            } else if t.starts_with(|c: char| c.is_ascii_uppercase()) {
                let name: String = t.chars().take_while(|c| c.is_alphanumeric()).collect();
                let verb = format!("{prefix}{}", kebab(&name));
                if attrs.contains("subcommand") {
                    // `Swarm(swarm::SwarmCmd),`: the enum's own name.
                    let ty = t[name.len()..].trim_matches(|c: char| !c.is_alphanumeric());
                    let inner: String = ty
                        .rsplit("::")
                        .next()
                        .unwrap_or(ty)
                        .chars()
                        .take_while(|c| c.is_alphanumeric())
                        .collect();
                    out.extend(verbs_of(code, &inner, &format!("{verb} ")));
                } else if !attrs.contains("hide = true") {
                    out.push(verb);
                }
                attrs.clear();
            }
        }
        depth += line.matches(['{', '(']).count() as i32 - line.matches(['}', ')']).count() as i32;
        if depth <= 0 {
            break;
        }
    }
    out
}

#[test]
fn architecture_md_lists_the_verbs_of_cli_rs() {
    // The tree is cli.rs; a subcommand's enum lives with its verb.
    let mut cli = std::fs::read_to_string(format!("{ROOT}/src/bin/b2d/cli.rs")).unwrap();
    for s in source::load(&["src/host/cmd"]) {
        cli.push_str(&std::fs::read_to_string(format!("{ROOT}/{}", s.rel)).unwrap());
    }
    let cli: String = source::blank(&cli.chars().collect::<Vec<_>>())
        .into_iter()
        .collect();
    let verbs: BTreeSet<String> = verbs_of(&cli, "Cmd", "").into_iter().collect();
    let doc = architecture_md();
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Verbs"))
        .expect("ARCHITECTURE.md has a `## Verbs` section");
    let mut listed = BTreeSet::new();
    let mut found = Vec::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').collect();
        listed.extend(cells[1].split('`').skip(1).step_by(2).map(str::to_string));
        for path in cells[2].split('`').skip(1).step_by(2) {
            let file = if path.starts_with("src/") {
                format!("{ROOT}/{path}")
            } else {
                format!("{ROOT}/src/host/{path}")
            };
            if !std::path::Path::new(&file).exists() {
                found.push(format!(
                    "ARCHITECTURE.md: `{path}` (verb table) does not exist"
                ));
            }
        }
    }
    found.extend(
        verbs
            .difference(&listed)
            .map(|v| format!("src/bin/b2d/cli.rs: `{v}` is not in ARCHITECTURE.md's verb table")),
    );
    found.extend(
        listed
            .difference(&verbs)
            .map(|v| format!("ARCHITECTURE.md: `{v}` is not a verb of src/bin/b2d/cli.rs")),
    );
    fail_if_any("ARCHITECTURE.md's verb table and the CLI differ", found);
}

#[test]
fn no_circle_of_files() {
    let (_, edges) = library();
    let found: Vec<String> = graph::folder_circles(&edges)
        .iter()
        .map(|c| {
            let uses: Vec<String> = c
                .edges
                .iter()
                .map(|e| format!("{}:{} uses {}", e.from, e.line, e.to))
                .collect();
            format!(
                "{}: {} ({})",
                c.folder,
                c.parts.join(" ↔ "),
                uses.join("; ")
            )
        })
        .collect();
    fail_if_any(
        "circles of files (what both sides use goes into a leaf both can use)",
        found,
    );
}
