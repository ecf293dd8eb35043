//! End-to-end, as an ordinary user with everything at its default: the
//! machine store in the home (`~/.local/share/b2d`), the home shared,
//! and a container that mounts the whole home. The VM boundary holds:
//! the store (every machine's keys) and the credential folders are empty
//! in the guest, an ordinary project file is read and written, and the
//! guest cannot make a host file setuid; through virtiofs, then through
//! 9p (QEMU confined in the same way).

use qemu_tests::fixture::iso;
use qemu_tests::user::{s, Store, UserEnv};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

const NAME: &str = "boundary";

/// What a container sees of the home, one line per probe.
const PROBE: &str = "
    echo store: $(ls -A /h/.local/share/b2d | wc -l)
    echo ssh: $(ls -A /h/.ssh | wc -l)
    echo aws: $(ls -A /h/.aws | wc -l)
    cat /h/.local/share/b2d/machines/other/ca-key.pem 2>/dev/null || echo ca-key: unreadable
    cat /h/.ssh/id_ed25519 2>/dev/null || echo key: unreadable
    touch /h/.ssh/authorized_keys 2>/dev/null || echo plant: refused
    cat /h/src/app/f.txt
    echo from-the-guest > /h/src/app/new.txt && echo write: ok
    touch /h/src/app/tool && chmod 4755 /h/src/app/tool 2>/dev/null || echo setuid: refused
";

fn check_the_boundary(e: &UserEnv, fs: &str) {
    let home = e.home();
    let vol = format!("{}:/h", s(&home));
    let seen = e.docker(&["run", "--rm", "-v", &vol, "bb", "sh", "-c", PROBE]);
    assert_eq!(
        seen,
        "store: 0\nssh: 0\naws: 0\nca-key: unreadable\nkey: unreadable\nplant: refused\n\
         hello\nwrite: ok\nsetuid: refused\n",
        "through {fs}"
    );
    // On the host: the write landed, the user's; nothing else changed.
    let new = home.join("src/app/new.txt");
    assert_eq!(std::fs::read_to_string(&new).unwrap(), "from-the-guest\n");
    assert_eq!(std::fs::metadata(&new).unwrap().uid(), e.who.uid);
    let tool = std::fs::metadata(home.join("src/app/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o6000, 0, "setuid on the host");
    assert!(!home.join(".ssh/authorized_keys").exists());
    assert_eq!(
        std::fs::read_to_string(home.join(".ssh/id_ed25519")).unwrap(),
        "the user's key\n"
    );
    // The machine's own files are there, beside what the guest saw empty.
    assert!(e.machine_dir().join("ca-key.pem").is_file());
    for f in ["new.txt", "tool"] {
        std::fs::remove_file(home.join("src/app").join(f)).unwrap();
    }
}

#[test]
fn a_hostile_guest_sees_nothing_of_b2d_or_the_user_s_secrets() {
    let e = UserEnv::new(
        NAME,
        Store::InHome,
        &["home/src/app", "home/.ssh", "home/.aws"],
        &[
            ("home/src/app/f.txt", "hello\n"),
            ("home/.ssh/id_ed25519", "the user's key\n"),
            ("home/.aws/credentials", "[default]\n"),
            // Another machine of the same store.
            (
                "home/.local/share/b2d/machines/other/ca-key.pem",
                "another machine's CA key\n",
            ),
        ],
    );
    let iso = iso();
    let out = e.run(
        qemu_tests::fixture::b2d_bin().to_str().unwrap(),
        &[
            "up",
            NAME,
            "--iso",
            s(&iso),
            "--disk-size",
            "2G",
            "--timeout",
            "400",
        ],
    );
    let said = test_support::assert_ok("up", &out);
    let said = format!("{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!said.contains("not sharing"), "{said}");
    let inspect: serde_json::Value = serde_json::from_str(&e.b2d(&["inspect", NAME])).unwrap();
    let hidden: Vec<&str> = inspect["hidden"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let home = e.home();
    for h in [".local/share/b2d", ".ssh", ".aws"] {
        let p = home.join(h);
        assert!(hidden.contains(&s(&p)), "{h} not in {hidden:?}");
    }
    e.busybox(&["sh", "cat", "echo", "ls", "wc", "touch", "chmod"], &[]);
    check_the_boundary(&e, "virtiofs");

    // The same through 9p, served by QEMU itself.
    e.b2d(&["stop", NAME]);
    e.b2d(&["up", NAME, "--mount-type", "9p", "--timeout", "400"]);
    let console = b2d::host::vm::console::read_log(&e.machine_dir().join("serial.log"));
    let line = format!(
        "host {} mounted read-write at the same path (9p)",
        home.display()
    );
    assert!(console.contains(&line), "{line} not in the console");
    check_the_boundary(&e, "9p");
}
