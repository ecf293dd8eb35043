//! The checks' own parts, on small texts: each rule is only as good as
//! the scanner under it.

use crate::graph::{self, Edge, Modules};
use crate::source::{self, Source};

fn text(chars: &[char]) -> String {
    chars.iter().collect()
}

#[test]
fn blanking_hides_comments_and_literals_and_keeps_lines() {
    let src = r####"let a = "Command::new(\"x\")"; // Command::new
/* outer /* Command::new */ still comment */ let b = '{';
let c: &'static str = r#"a "quoted" Command::new"#; let d = b'}';
let e = '\''; fn f<'a>(x: &'a str) {}
Command::new("real")"####;
    let chars: Vec<char> = src.chars().collect();
    let code = text(&source::blank(&chars));
    assert_eq!(code.chars().count(), src.chars().count());
    assert_eq!(code.lines().count(), src.lines().count());
    assert_eq!(code.matches("Command::new").count(), 1, "{code}");
    assert!(code.lines().last().unwrap().starts_with("Command::new"));
    assert!(
        code.contains("fn f<'a>(x: &'a str) {}"),
        "lifetimes stay: {code}"
    );
    // The braces in '{' and b'}' are gone, so the code's own balance.
    assert_eq!(
        code.matches('{').count(),
        code.matches('}').count(),
        "{code}"
    );
}

#[test]
fn cfg_test_items_and_test_files_are_found() {
    let src =
        "fn run() { go(); }\n#[cfg(test)]\nmod tests {\n    fn t() { Command::new(\"x\"); }\n}\n\
               #[cfg(test)]\n#[path = \"run_tests.rs\"]\nmod more;\nfn after() {}\n";
    let s = Source::new("src/sys/run.rs", src);
    let at = |needle: &str| text(&s.code).find(needle).unwrap();
    assert!(s.is_test(at("Command")));
    assert!(!s.is_test(at("go()")));
    assert!(!s.is_test(at("after")));
    assert_eq!(s.test_children(), vec!["src/sys/run_tests.rs".to_string()]);
    assert_eq!(s.line_of(at("Command")), 4);
}

#[test]
fn paths_resolve_to_the_files_they_reach() {
    let files = [
        ("src/lib.rs", ""),
        ("src/guest/mod.rs", ""),
        ("src/guest/control.rs", "pub const X: u8 = 1;"),
        ("src/host/mod.rs", ""),
        ("src/host/vm/mod.rs", "pub struct Vm;"),
        ("src/host/vm/spec.rs", "pub fn line() {}"),
        ("src/host/vm/qmp.rs", ""),
        (
            "src/host/cmd.rs",
            "use crate::host::vm::{self, qmp as q};\nuse super::vm::Vm;\n\
             fn f() { vm::spec::line(); let _ = crate::guest::control::X; }\n\
             #[cfg(test)]\nmod tests { use crate::host::vm::qmp; }\n",
        ),
    ];
    let sources: Vec<Source> = files.iter().map(|(p, t)| Source::new(p, t)).collect();
    let m = Modules::new(&sources);
    let edges: Vec<(String, usize)> = m
        .edges(&sources[7])
        .into_iter()
        .map(|e| (e.to, e.line))
        .collect();
    assert_eq!(
        edges,
        vec![
            ("src/host/vm/mod.rs".to_string(), 1),
            ("src/host/vm/qmp.rs".to_string(), 1),
            ("src/host/vm/spec.rs".to_string(), 3),
            ("src/guest/control.rs".to_string(), 3),
        ]
    );
    assert_eq!(
        graph::module_of("src/host/vm/mod.rs").unwrap(),
        ["host", "vm"]
    );
    assert_eq!(graph::module_of("src/bin/b2d.rs"), None);
}

#[test]
fn circles_are_found_and_chains_are_not() {
    let e = |a: &str, b: &str| (a.to_string(), b.to_string());
    let edges = [
        e("a", "b"),
        e("b", "c"),
        e("c", "a"),
        e("c", "d"),
        e("d", "e"),
    ];
    assert_eq!(graph::circles(&edges), vec![vec!["a", "b", "c"]]);
    assert!(graph::circles(&edges[3..]).is_empty());
}

#[test]
fn a_circle_between_folders_is_found_and_a_folder_s_face_is_not() {
    let e = |a: &str, b: &str, line| Edge {
        from: a.into(),
        to: b.into(),
        line,
    };
    let edges = [
        // A room's files and its mod.rs use each other: no circle.
        e("src/host/up/mod.rs", "src/host/up/resume.rs", 1),
        e("src/host/up/resume.rs", "src/host/up/mod.rs", 2),
        // network/ uses vm/ through one file, vm/ network/ through another.
        e("src/host/network/announce.rs", "src/host/vm/mod.rs", 3),
        e("src/host/vm/mod.rs", "src/host/network/mod.rs", 4),
        e("src/host/network/mod.rs", "src/host/network/announce.rs", 5),
        // Two files of one folder.
        e("src/disk/probe/fs.rs", "src/disk/probe/ntfs.rs", 6),
        e("src/disk/probe/ntfs.rs", "src/disk/probe/fs.rs", 7),
    ];
    let found: Vec<(String, Vec<String>, Vec<usize>)> = graph::folder_circles(&edges)
        .into_iter()
        .map(|c| (c.folder, c.parts, c.edges.iter().map(|e| e.line).collect()))
        .collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        found,
        vec![
            ("src/disk/probe/".into(), s(&["fs", "ntfs"]), vec![6, 7]),
            ("src/host/".into(), s(&["network", "vm"]), vec![3, 4]),
        ]
    );
}

#[test]
fn command_new_is_found_however_spelled() {
    let code: Vec<char> =
        "std::process::Command::new(x); Command :: new(y); MyCommand::new(); Command::newer()"
            .chars()
            .collect();
    assert_eq!(crate::command_new(&code), vec![14, 31]);
}

#[test]
fn a_module_is_named_only_by_its_whole_path() {
    assert!(crate::names("see `vm/spec.rs` here", "vm/spec.rs"));
    assert!(crate::names("src/host/vm/spec.rs", "vm/spec.rs"));
    assert!(crate::names("- vm/ QEMU", "vm/"));
    assert!(!crate::names("`xvm/spec.rs`", "vm/spec.rs"));
    assert!(!crate::names("`shares/vm/spec.rs`", "vm/spec.rs"));
}

#[test]
fn verbs_are_read_from_the_clap_enums() {
    let cli = "pub enum Cmd {\n    /// Boot.\n    Up {\n        #[arg(long)]\n        cpus: u8,\n    },\n\
               #[command(subcommand)]\n    Swarm(SwarmCmd),\n    #[command(hide = true)]\n    Agent { name: String },\n\
               SshConfig(SshConfigArgs),\n}\npub enum SwarmCmd {\n    Create {\n        nodes: u8,\n    },\n    Ls,\n}\n";
    assert_eq!(
        crate::verbs_of(cli, "Cmd", ""),
        ["up", "swarm create", "swarm ls", "ssh-config"]
    );
}
