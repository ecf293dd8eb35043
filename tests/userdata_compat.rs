//! Interoperability of the userdata archive with independent tar tools:
//! GNU tar and Python's tarfile must read what b2d writes, and b2d must
//! write byte for byte what docker-machine (Go archive/tar) writes, as
//! reproduced by tests/fixtures/gen_docker_machine_disk.py.
//!
//! These tests need `tar` and `python3` and fail (rather than skip) when
//! either is missing.

use b2d::disk::userdata::{self, Compat, EntryKind, Extension};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MAGIC_NAME: &str = "boot2docker, please format-me";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture_key() -> Vec<u8> {
    std::fs::read(fixtures().join("docker-machine-id_rsa.pub")).unwrap()
}

/// Run a required tool (tar, python3); a missing tool is a test failure.
fn run(cmd: &mut Command) -> Output {
    let out = test_support::output(cmd);
    test_support::assert_ok(&cmd.get_program().to_string_lossy(), &out);
    out
}

fn b2d_archive() -> Vec<u8> {
    let exts = [
        Extension {
            name: "hostname".into(),
            mode: 0o644,
            data: b"b2d-test\n".to_vec(),
        },
        Extension {
            name: "profile".into(),
            mode: 0o600,
            data: b"EXTRA_ARGS=--debug\n".to_vec(),
        },
    ];
    userdata::build(&fixture_key(), &exts, Compat::B2d).unwrap()
}

/// (path, `ls -l` type letter, mode) of every entry of [`b2d_archive`].
fn expected() -> &'static [(&'static str, char, u32)] {
    &[
        (MAGIC_NAME, '-', 0o000),
        (".ssh", 'd', 0o700),
        (".ssh/authorized_keys", '-', 0o644),
        (".ssh/authorized_keys2", '-', 0o644),
        (".b2d", 'd', 0o700),
        (".b2d/hostname", '-', 0o644),
        (".b2d/profile", '-', 0o600),
    ]
}

#[test]
fn gnu_tar_lists_and_extracts_the_b2d_archive() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("userdata.tar");
    std::fs::write(&tarball, b2d_archive()).unwrap();
    let out = run(Command::new("tar").arg("-tvf").arg(&tarball));
    let listing = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), expected().len(), "{listing}");
    for (line, (name, kind, mode)) in lines.iter().zip(expected()) {
        assert!(line.ends_with(&format!(" {name}")), "{line} vs {name}");
        let perms = format!("{kind}{}", rwx(*mode));
        assert!(line.starts_with(&perms), "{line} vs {perms}");
        assert!(line.contains(" 0/0 "), "{line}");
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).is_empty(),
        "tar warned"
    );

    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(&x));
    assert_eq!(
        std::fs::read(x.join(".ssh/authorized_keys")).unwrap(),
        fixture_key()
    );
    assert_eq!(
        std::fs::read(x.join(MAGIC_NAME)).unwrap(),
        MAGIC_NAME.as_bytes()
    );
    assert_eq!(
        std::fs::read(x.join(".b2d/hostname")).unwrap(),
        b"b2d-test\n"
    );
}

fn rwx(mode: u32) -> String {
    (0..9)
        .map(|i| {
            if mode & (0o400 >> i) == 0 {
                '-'
            } else {
                ['r', 'w', 'x'][i % 3]
            }
        })
        .collect()
}

#[test]
fn python_tarfile_reads_the_b2d_archive() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("userdata.tar");
    std::fs::write(&tarball, b2d_archive()).unwrap();
    let script = "import sys, tarfile\n\
        with tarfile.open(sys.argv[1], errorlevel=2) as t:\n\
        \x20   for m in t.getmembers():\n\
        \x20       kind = 'd' if m.isdir() else '-' if m.isfile() else '?'\n\
        \x20       print('%s|%s|%o|%d|%s' % (m.name, kind, m.mode, m.size, t.extractfile(m).read().hex() if m.isfile() else ''))\n";
    let out = run(Command::new("python3").arg("-c").arg(script).arg(&tarball));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(rows.len(), expected().len(), "{text}");
    for (row, (name, kind, mode)) in rows.iter().zip(expected()) {
        assert_eq!(row[0], *name);
        assert_eq!(row[1], kind.to_string());
        assert_eq!(row[2], format!("{mode:o}"));
    }
    let key_hex: String = fixture_key().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(rows[2][4], key_hex);
    assert_eq!(rows[3][4], key_hex);
}

fn committed_fixture() -> Vec<u8> {
    std::fs::read(fixtures().join("docker-machine-userdata.tar")).unwrap()
}

#[test]
fn docker_machine_mode_is_byte_identical_to_the_go_like_fixture() {
    let ours = userdata::build(&fixture_key(), &[], Compat::DockerMachine).unwrap();
    let theirs = committed_fixture();
    if ours != theirs {
        let first = ours.iter().zip(&theirs).position(|(a, b)| a != b);
        panic!(
            "differs from the fixture: lengths {} vs {}, first differing byte {first:?}",
            ours.len(),
            theirs.len()
        );
    }
    // 4 headers + 3 data blocks + end marker: 4.5 KiB for a key under 512
    // bytes (a 2048-bit RSA line is about 400).
    assert!(ours.len() <= 4608, "{} bytes", ours.len());
    // boot2docker reads only the first 4096 bytes: all four entries, data
    // included, end before that.
    let a = userdata::read(&ours[..]).unwrap();
    assert_eq!(a.len, ours.len());
    let entries_end = a.len - 1024;
    assert!(entries_end <= 4096, "entries end at byte {entries_end}");
    // Do what boot2docker's automount did: `dd bs=1 count=4096` of the disk,
    // then `tar xf` of that.
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head.tar");
    std::fs::write(&head, &ours[..4096]).unwrap();
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run(Command::new("tar").arg("-xf").arg(&head).arg("-C").arg(&x));
    assert_eq!(
        std::fs::read(x.join(".ssh/authorized_keys2")).unwrap(),
        fixture_key()
    );
}

#[test]
fn the_fixture_reads_back_as_docker_machine_wrote_it() {
    let a = userdata::read(&committed_fixture()[..]).unwrap();
    assert!(a.has_magic_entry());
    let got: Vec<(&str, EntryKind, u32)> = a
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.kind, e.mode))
        .collect();
    assert_eq!(
        got,
        [
            (MAGIC_NAME, EntryKind::File, 0),
            (".ssh", EntryKind::Dir, 0o700),
            (".ssh/authorized_keys", EntryKind::File, 0o644),
            (".ssh/authorized_keys2", EntryKind::File, 0o644),
        ]
    );
    let key = fixture_key();
    assert_eq!(a.entries[2].data, key);
    assert_eq!(a.entries[3].data, key);
    let line = String::from_utf8(key).unwrap();
    assert_eq!(a.authorized_keys(), [line.trim_end()]);
    assert!(a.b2d_files().is_empty());
}

#[test]
fn the_generator_still_reproduces_the_committed_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("regenerated.tar");
    run(Command::new("python3")
        .arg(fixtures().join("gen_docker_machine_disk.py"))
        .arg(fixtures().join("docker-machine-id_rsa.pub"))
        .arg(&out));
    assert_eq!(std::fs::read(&out).unwrap(), committed_fixture());
}

/// A `.ssh` tree as a user would pack it by hand.
fn ssh_tree(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join(".ssh")).unwrap();
    std::fs::write(src.join(".ssh/authorized_keys"), fixture_key()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let private = std::fs::Permissions::from_mode(0o700);
    std::fs::set_permissions(src.join(".ssh"), private).unwrap();
    let public = std::fs::Permissions::from_mode(0o644);
    std::fs::set_permissions(src.join(".ssh/authorized_keys"), public).unwrap();
    src
}

fn assert_reads_the_ssh_tree(bytes: &[u8], writer: &str) {
    let a = userdata::read(bytes).unwrap_or_else(|e| panic!("{writer}: {e}"));
    let got: Vec<(&str, EntryKind, u32)> = a
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.kind, e.mode))
        .collect();
    assert_eq!(
        got,
        [
            (".ssh", EntryKind::Dir, 0o700),
            (".ssh/authorized_keys", EntryKind::File, 0o644)
        ],
        "{writer}"
    );
    assert_eq!(a.entries[1].data, fixture_key(), "{writer}");
}

/// GNU tar's and Python's headers differ from Go's (GNU magic, empty device
/// fields, v7 headers without magic, uid/gid/mtime of the packing user);
/// the reader takes all of them.
#[test]
fn archives_written_by_gnu_tar_and_python_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let src = ssh_tree(dir.path());
    for format in ["gnu", "oldgnu", "ustar", "v7"] {
        let out = dir.path().join(format!("{format}.tar"));
        run(Command::new("tar")
            .arg(format!("--format={format}"))
            .arg("-cf")
            .arg(&out)
            .arg("-C")
            .arg(&src)
            .arg(".ssh"));
        assert_reads_the_ssh_tree(&std::fs::read(&out).unwrap(), &format!("tar {format}"));
    }
    for format in ["USTAR_FORMAT", "GNU_FORMAT"] {
        let out = dir.path().join(format!("{format}.tar"));
        let script = format!(
            "import sys, tarfile\n\
             with tarfile.open(sys.argv[1], 'w', format=tarfile.{format}) as t:\n\
             \x20   t.add(sys.argv[2], arcname='.ssh')\n"
        );
        run(Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&out)
            .arg(src.join(".ssh")));
        assert_reads_the_ssh_tree(&std::fs::read(&out).unwrap(), &format!("python {format}"));
    }
}
