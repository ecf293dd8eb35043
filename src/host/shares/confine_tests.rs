use super::*;
use std::process::Command;

struct Tree {
    _t: tempfile::TempDir,
    root: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        for d in [
            "home/.ssh",
            "home/.local/share/b2d/machines/other",
            "home/src",
            "view",
            "staging",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("home/.ssh/id_ed25519"), "secret key\n").unwrap();
        std::fs::write(
            root.join("home/.local/share/b2d/machines/other/ca-key.pem"),
            "ca key\n",
        )
        .unwrap();
        std::fs::write(root.join("home/.netrc"), "password\n").unwrap();
        std::fs::write(root.join("home/src/f.txt"), "project\n").unwrap();
        Tree { _t: t, root }
    }

    fn view(&self) -> View {
        View {
            source: self.root.join("home"),
            at: self.root.join("view"),
            masks: vec![".ssh".into(), ".local/share/b2d".into(), ".netrc".into()],
        }
    }

    /// `sh -c script` confined to `views`, from the tree's root.
    fn run(&self, views: Option<&[View]>, script: &str) -> std::process::Output {
        self.try_run(views, script).unwrap()
    }

    fn try_run(&self, views: Option<&[View]>, script: &str) -> io::Result<std::process::Output> {
        let mut c = Command::new("sh");
        c.args(["-c", script]).current_dir(&self.root);
        prepare(views, &self.root.join("staging"))
            .unwrap()
            .apply(&mut c);
        c.output()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_view_shows_the_share_with_its_hidden_paths_empty_and_read_only() {
    available().expect("user namespaces work on the test host");
    let t = Tree::new();
    let out = t.run(
        Some(&[t.view()]),
        "cat view/src/f.txt; echo new > view/src/g.txt && cat view/src/g.txt
         echo ssh: $(ls -A view/.ssh) store: $(ls -A view/.local/share/b2d)
         echo netrc: $(wc -c < view/.netrc)
         cat view/.local/share/b2d/machines/other/ca-key.pem view/.ssh/id_ed25519 2>&1
         touch view/.ssh/planted 2>&1 || echo refused",
    );
    let said = text(&out.stdout);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(
        lines[0..4],
        ["project", "new", "ssh: store:", "netrc: 0"],
        "{said}"
    );
    assert!(
        !said.contains("secret key") && !said.contains("ca key"),
        "{said}"
    );
    assert!(said.contains("Read-only file system"), "{said}");
    assert!(said.ends_with("refused\n"), "{said}");
    // The write went to the host; nothing else changed there.
    assert_eq!(
        std::fs::read_to_string(t.root.join("home/src/g.txt")).unwrap(),
        "new\n"
    );
    assert!(!t.root.join("home/.ssh/planted").exists());
    assert_eq!(
        std::fs::read_to_string(t.root.join("home/.ssh/id_ed25519")).unwrap(),
        "secret key\n"
    );
    // Outside the namespace the view folder is still empty.
    assert_eq!(std::fs::read_dir(t.root.join("view")).unwrap().count(), 0);
}

#[test]
fn the_guest_cannot_make_a_host_file_setuid_or_setgid() {
    let t = Tree::new();
    for views in [None, Some(vec![t.view()])] {
        let out = t.run(
            views.as_deref(),
            "f=home/src/tool; : > $f
             chmod 755 $f && echo plain ok
             chmod 4755 $f 2>&1 || echo setuid refused
             chmod 2755 $f 2>&1 || echo setgid refused
             mkdir home/src/team && echo dir ok
             chmod 2775 home/src/team 2>&1 || echo setgid dir refused",
        );
        let said = text(&out.stdout);
        for want in [
            "plain ok",
            "setuid refused",
            "setgid refused",
            "dir ok",
            "setgid dir refused",
        ] {
            assert!(said.contains(want), "{want}: {said}");
        }
        let mode = std::fs::metadata(t.root.join("home/src/tool")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o7777,
            0o755
        );
        std::fs::remove_dir(t.root.join("home/src/team")).unwrap();
    }
    // A file created setuid is refused as well (python's os.open passes the mode).
    let out = t.run(
        None,
        "python3 -c 'import os; os.open(\"home/src/s\", os.O_CREAT | os.O_WRONLY, 0o4755)' 2>&1 || echo create refused",
    );
    assert!(
        text(&out.stdout).contains("create refused"),
        "{}",
        text(&out.stdout)
    );
    assert!(!t.root.join("home/src/s").exists());
}

#[test]
fn a_share_replaced_by_a_symlink_does_not_start() {
    available().expect("user namespaces work on the test host");
    let t = Tree::new();
    std::fs::rename(t.root.join("home/src"), t.root.join("home/src.old")).unwrap();
    std::os::unix::fs::symlink(t.root.join("home/.ssh"), t.root.join("home/src")).unwrap();
    let v = View {
        source: t.root.join("home/src"),
        at: t.root.join("view"),
        masks: Vec::new(),
    };
    // The server never starts: its launch fails.
    let e = t.try_run(Some(&[v]), "ls view").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR), "{e}");
}
