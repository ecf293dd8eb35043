//! `b2d disk create` / `b2d disk inspect` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use test_support::{keygen_as, measured, Measured};

const B2D: &str = env!("CARGO_BIN_EXE_b2d");

fn b2d(home: &Path, args: &[&str]) -> Output {
    Command::new(B2D)
        .args(args)
        .env("HOME", home)
        .current_dir(home)
        .output()
        .expect("run b2d")
}

fn ok(out: &Output) -> String {
    test_support::assert_ok("b2d", out)
}

/// The public half of a new key pair (RSA at 2048 bits, as docker-machine
/// generated its keys).
fn keygen(dir: &Path, name: &str, kind: &str) -> PathBuf {
    keygen_as(dir, name, kind).public
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

/// `b2d disk inspect PATH` measured: killed (failing the test) if it is
/// not over in 10 s.
fn inspect_measured(path: &Path) -> Measured {
    measured(
        Command::new(B2D).args(["disk", "inspect"]).arg(path),
        Duration::from_secs(10),
    )
}

/// `b2d disk inspect PATH` refuses PATH quickly, in little memory, with
/// one line that names PATH exactly once and says each of `words`.
fn refused_at_once(path: &Path, words: &[&str]) -> String {
    let m = inspect_measured(path);
    let msg = m.assert_refused("b2d disk inspect", path, words);
    m.assert_cheap("b2d disk inspect", Duration::from_secs(1), 64 << 20);
    msg
}

#[test]
fn create_then_inspect_every_format_with_the_default_key() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".ssh")).unwrap();
    let pubkey = keygen(&home.path().join(".ssh"), "id_ed25519", "ed25519");
    let key_line = std::fs::read_to_string(&pubkey).unwrap().trim().to_string();
    for (fmt, size) in [
        ("raw", "2T"),
        ("qcow2", "2T"),
        ("vmdk", "2T"),
        ("vhd", "2040G"),
    ] {
        let name = format!("disk.{fmt}");
        ok(&b2d(
            home.path(),
            &["disk", "create", &name, "--size", size, "--format", fmt],
        ));
        let v = json(&ok(&b2d(
            home.path(),
            &["disk", "inspect", &name, "--json"],
        )));
        assert_eq!(v["format"], fmt, "{v}");
        assert_eq!(v["magic"], true, "{fmt}");
        assert_eq!(v["authorized_keys"], serde_json::json!([key_line]), "{fmt}");
        let paths: Vec<&str> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            &paths[..4],
            [
                "boot2docker, please format-me",
                ".ssh",
                ".ssh/authorized_keys",
                ".ssh/authorized_keys2"
            ]
        );
        assert_eq!(v["partitions"], serde_json::json!([]));
        assert_eq!(v["filesystems"], serde_json::json!([]));
        assert!(v["virtual_size"].as_u64().unwrap() >= 2040 << 30);
    }
}

#[test]
fn compat_docker_machine_writes_exactly_four_entries() {
    let home = tempfile::tempdir().unwrap();
    let pubkey = keygen(home.path(), "id_rsa", "rsa");
    let k = pubkey.to_str().unwrap();
    ok(&b2d(
        home.path(),
        &[
            "disk",
            "create",
            "dm.img",
            "--size",
            "1G",
            "--compat",
            "docker-machine",
            "--ssh-key",
            k,
        ],
    ));
    let v = json(&ok(&b2d(
        home.path(),
        &["disk", "inspect", "dm.img", "--json"],
    )));
    assert_eq!(v["entries"].as_array().unwrap().len(), 4, "{v}");
    assert!(v["archive_len"].as_u64().unwrap() <= 4608);
    let human = ok(&b2d(home.path(), &["disk", "inspect", "dm.img"]));
    assert!(human.contains("magic: yes"), "{human}");
    assert!(human.contains(".ssh/authorized_keys2"), "{human}");
}

#[test]
fn misuse_gets_clear_errors_and_never_overwrites() {
    let home = tempfile::tempdir().unwrap();
    // No key anywhere.
    let out = b2d(home.path(), &["disk", "create", "a.img", "--size", "1G"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("id_ed25519.pub") && err.contains("--ssh-key"),
        "{err}"
    );
    assert!(!home.path().join("a.img").exists());

    let pubkey = keygen(home.path(), "k", "ed25519");
    let k = pubkey.to_str().unwrap();
    // A private key passed by mistake.
    let privkey = home.path().join("k");
    let out = b2d(
        home.path(),
        &[
            "disk",
            "create",
            "a.img",
            "--size",
            "1G",
            "--ssh-key",
            privkey.to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("private key"));

    // Bad size names the input.
    let out = b2d(
        home.path(),
        &["disk", "create", "a.img", "--size", "20X", "--ssh-key", k],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"20X\""));

    // An existing file is left byte-identical without --force, replaced with it.
    let victim = home.path().join("a.img");
    std::fs::write(&victim, b"precious").unwrap();
    let out = b2d(
        home.path(),
        &["disk", "create", "a.img", "--size", "1G", "--ssh-key", k],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("a.img"));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    ok(&b2d(
        home.path(),
        &[
            "disk",
            "create",
            "a.img",
            "--size",
            "1G",
            "--ssh-key",
            k,
            "--force",
        ],
    ));
    assert_eq!(std::fs::metadata(&victim).unwrap().len(), 1 << 30);

    // --force never writes through to something that is not a regular file.
    let out = b2d(
        home.path(),
        &[
            "disk",
            "create",
            "/dev/null",
            "--size",
            "1G",
            "--ssh-key",
            k,
            "--force",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/dev/null"));
}

#[test]
fn inspect_reports_real_partitions_and_labels() {
    let home = tempfile::tempdir().unwrap();
    let img = home.path().join("fs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let st = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "boot2docker-data"])
        .arg(&img)
        .status()
        .expect("mkfs.ext4 (apt-get install e2fsprogs)");
    assert!(st.success());
    let v = json(&ok(&b2d(
        home.path(),
        &["disk", "inspect", "fs.img", "--json"],
    )));
    assert_eq!(v["magic"], false);
    assert_eq!(v["filesystems"][0]["kind"], "ext4");
    assert_eq!(v["filesystems"][0]["label"], "boot2docker-data");
}

#[test]
fn inspect_refuses_what_is_not_a_file_or_a_block_device_at_once() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("pipe.img");
    test_support::run("mkfifo", &[fifo.to_str().unwrap()]);
    refused_at_once(&fifo, &["is a fifo", "regular files and block devices"]);
    refused_at_once(t.path(), &["is a directory"]);
    refused_at_once(Path::new("/dev/null"), &["is a character device"]);
}

#[test]
fn strings_from_the_image_cannot_drive_the_terminal() {
    let home = tempfile::tempdir().unwrap();
    // A key comment that would set the window title, clear the screen
    // (ESC and the 8-bit CSI), ring the bell, and reverse the text.
    let evil = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdx1Q0XbE3W9r1HqQ0w3l3m8tZ1p2x3y4z5a6b7c8d9 \
                me\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}2J\u{7f}\u{202e}gpj.exe";
    let key = home.path().join("evil.pub");
    std::fs::write(&key, format!("{evil}\n")).unwrap();
    ok(&b2d(
        home.path(),
        &[
            "disk",
            "create",
            "evil.img",
            "--size",
            "1G",
            "--ssh-key",
            key.to_str().unwrap(),
        ],
    ));
    let raw = |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    let human = ok(&b2d(home.path(), &["disk", "inspect", "evil.img"]));
    assert!(!human.chars().any(raw), "raw control characters: {human:?}");
    assert!(
        human.contains(r"me\x1b]0;owned\x07\x1b[2J\u{9b}2J\x7f\u{202e}gpj.exe"),
        "{human}"
    );
    let text = ok(&b2d(
        home.path(),
        &["disk", "inspect", "evil.img", "--json"],
    ));
    assert!(!text.chars().any(raw), "raw control characters: {text:?}");
    assert_eq!(
        json(&text)["authorized_keys"][0],
        evil,
        "JSON keeps the exact key"
    );

    // Nor can an error that quotes the image: a vmdk descriptor naming a
    // parent made of escape sequences.
    ok(&b2d(
        home.path(),
        &[
            "disk",
            "create",
            "evil.vmdk",
            "--format",
            "vmdk",
            "--size",
            "1G",
            "--ssh-key",
            key.to_str().unwrap(),
        ],
    ));
    let vmdk = home.path().join("evil.vmdk");
    let mut bytes = std::fs::read(&vmdk).unwrap();
    let at = bytes
        .windows(18)
        .position(|w| w == b"parentCID=ffffffff")
        .unwrap();
    bytes[at + 10..at + 18].copy_from_slice(b"\x1b[2J\x1b]0\x07");
    std::fs::write(&vmdk, bytes).unwrap();
    let out = b2d(home.path(), &["disk", "inspect", "evil.vmdk"]);
    let msg = test_support::assert_fails("b2d disk inspect", &out);
    assert!(msg.contains(r"parentCID: \x1b[2j\x1b]0\x07"), "{msg}");
    assert!(
        !msg.trim_end().chars().any(raw),
        "raw control characters: {msg:?}"
    );
}

/// A fresh `b2d disk create` image of `format`, with `patch` applied to
/// its bytes.
fn patched(home: &Path, format: &str, patch: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let key = keygen(home, &format!("k-{format}"), "ed25519");
    let name = format!("bad.{format}");
    ok(&b2d(
        home,
        &[
            "disk",
            "create",
            &name,
            "--format",
            format,
            "--size",
            "1G",
            "--ssh-key",
            key.to_str().unwrap(),
        ],
    ));
    let path = home.join(name);
    let mut bytes = std::fs::read(&path).unwrap();
    patch(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn be64(b: &[u8], at: usize) -> usize {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap()) as usize
}

#[test]
fn an_image_error_names_the_path_once() {
    let home = tempfile::tempdir().unwrap();
    // The first L1 entry, the first grain directory entry and the first
    // BAT entry (those of the userdata at byte 0) point past the end.
    let qcow2 = patched(home.path(), "qcow2", |b| {
        let l1 = be64(b, 40);
        b[l1..l1 + 8].copy_from_slice(&((1u64 << 40) | (1 << 63)).to_be_bytes());
    });
    let vmdk = patched(home.path(), "vmdk", |b| {
        let gd = u64::from_le_bytes(b[56..64].try_into().unwrap()) as usize * 512;
        b[gd..gd + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    });
    let vhd = patched(home.path(), "vhd", |b| {
        let bat = be64(b, 512 + 16);
        b[bat..bat + 4].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
    });
    for img in [qcow2, vmdk, vhd] {
        refused_at_once(&img, &["past the end of the file"]);
    }
}
