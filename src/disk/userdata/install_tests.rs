//! Unit tests of the installer, in temporary directories. They expect to
//! run as root (as CI does) so that ownership can be checked.

use super::*;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

const KEY: &[u8] = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEY user@host\n";
const UID: u32 = 1000;
const GID: u32 = 50;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The owner to install as: docker's ids as root, else ourselves.
fn owner() -> (u32, u32) {
    if is_root() {
        (UID, GID)
    } else {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }
}

fn archive(exts: &[Extension]) -> Archive {
    read(&build(KEY, exts, Compat::B2d).unwrap()[..]).unwrap()
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn ext(name: &str, mode: u32, data: &[u8]) -> Extension {
    Extension {
        name: name.into(),
        mode,
        data: data.to_vec(),
    }
}

#[test]
fn installs_the_user_entries_with_owner_and_modes() {
    let home = tempfile::tempdir().unwrap();
    let a = archive(&[ext("hostname", 0o644, b"box\n")]);
    let (uid, gid) = owner();
    let report = install(&a, home.path(), uid, gid).unwrap();
    assert_eq!(report.dirs, [".ssh"]);
    assert_eq!(
        report.files,
        [".ssh/authorized_keys", ".ssh/authorized_keys2"]
    );
    assert_eq!(
        report.skipped,
        ["boot2docker, please format-me", ".b2d", ".b2d/hostname"]
    );
    assert_eq!(names_in(home.path()), [".ssh"], "no magic file, no .b2d");
    let ssh = home.path().join(".ssh");
    assert_eq!(names_in(&ssh), ["authorized_keys", "authorized_keys2"]);
    assert_eq!(mode_of(&ssh), 0o700);
    for f in ["authorized_keys", "authorized_keys2"] {
        let p = ssh.join(f);
        assert_eq!(fs::read(&p).unwrap(), KEY);
        assert_eq!(mode_of(&p), 0o644);
        let md = fs::metadata(&p).unwrap();
        assert_eq!((md.uid(), md.gid()), (uid, gid));
    }
    let md = fs::metadata(&ssh).unwrap();
    assert_eq!((md.uid(), md.gid()), (uid, gid));
    // Installing again replaces the files and leaves no temporaries.
    install(&a, home.path(), uid, gid).unwrap();
    assert_eq!(names_in(&ssh), ["authorized_keys", "authorized_keys2"]);
}

#[test]
fn a_symlinked_ssh_dir_pointing_outside_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), home.path().join(".ssh")).unwrap();
    let outside_mode = mode_of(outside.path());
    let (uid, gid) = owner();
    let e = install(&archive(&[]), home.path(), uid, gid).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, UserdataError::Unsafe { .. }), "{msg}");
    assert!(msg.contains(".ssh") && msg.contains("symlink"), "{msg}");
    assert!(
        names_in(outside.path()).is_empty(),
        "nothing written outside"
    );
    assert_eq!(
        mode_of(outside.path()),
        outside_mode,
        "outside dir not chmod-ed"
    );
}

#[test]
fn a_regular_file_where_a_directory_belongs_is_refused() {
    let home = tempfile::tempdir().unwrap();
    fs::write(home.path().join(".ssh"), b"not a dir").unwrap();
    let (uid, gid) = owner();
    let msg = install(&archive(&[]), home.path(), uid, gid)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(".ssh") && msg.contains("not a directory"),
        "{msg}"
    );
}

#[test]
fn a_symlinked_key_file_is_replaced_not_written_through() {
    let home = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    fs::create_dir(home.path().join(".ssh")).unwrap();
    symlink(&victim, home.path().join(".ssh/authorized_keys")).unwrap();
    let (uid, gid) = owner();
    install(&archive(&[]), home.path(), uid, gid).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    let p = home.path().join(".ssh/authorized_keys");
    assert!(fs::symlink_metadata(&p).unwrap().file_type().is_file());
    assert_eq!(fs::read(&p).unwrap(), KEY);
}

#[test]
fn a_directory_at_a_file_path_is_refused() {
    let home = tempfile::tempdir().unwrap();
    fs::create_dir_all(home.path().join(".ssh/authorized_keys")).unwrap();
    let (uid, gid) = owner();
    let msg = install(&archive(&[]), home.path(), uid, gid)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(".ssh/authorized_keys") && msg.contains("is a directory"),
        "{msg}"
    );
}

#[test]
fn a_symlinked_target_is_refused() {
    let real = tempfile::tempdir().unwrap();
    let holder = tempfile::tempdir().unwrap();
    let link = holder.path().join("home");
    symlink(real.path(), &link).unwrap();
    let msg = install(&archive(&[]), &link, 0, 0).unwrap_err().to_string();
    assert!(msg.contains("symlink") && msg.contains("home"), "{msg}");
    assert!(names_in(real.path()).is_empty());
    let missing = holder.path().join("missing");
    let msg = install(&archive(&[]), &missing, 0, 0)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("missing"), "{msg}");
}

#[test]
fn missing_parents_are_created_private_and_owned() {
    let home = tempfile::tempdir().unwrap();
    let a = Archive {
        entries: vec![Entry {
            path: ".config/app/settings".into(),
            kind: EntryKind::File,
            mode: 0o640,
            data: b"x=1".to_vec(),
        }],
        len: 0,
    };
    let (uid, gid) = owner();
    install(&a, home.path(), uid, gid).unwrap();
    for d in [".config", ".config/app"] {
        let p = home.path().join(d);
        assert_eq!(mode_of(&p), 0o700, "{d}");
        assert_eq!(fs::metadata(&p).unwrap().uid(), uid);
    }
    assert_eq!(mode_of(&home.path().join(".config/app/settings")), 0o640);
}

#[test]
fn a_symlink_deeper_in_the_tree_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir(home.path().join(".config")).unwrap();
    symlink(outside.path(), home.path().join(".config/app")).unwrap();
    let a = Archive {
        entries: vec![Entry {
            path: ".config/app/settings".into(),
            kind: EntryKind::File,
            mode: 0o644,
            data: b"x".to_vec(),
        }],
        len: 0,
    };
    let msg = install(&a, home.path(), 0, 0).unwrap_err().to_string();
    assert!(
        msg.contains(".config/app") && msg.contains("symlink"),
        "{msg}"
    );
    assert!(names_in(outside.path()).is_empty());
}

#[test]
fn b2d_entries_go_to_the_root_only_dir() {
    let lib = tempfile::tempdir().unwrap();
    let mut a = archive(&[
        ext("hostname", 0o644, b"box\n"),
        ext("bootsync.sh", 0o755, b"#!/bin/sh\n"),
        ext("ca.pem", 0o4777, b"PEM"),
    ]);
    a.entries.push(Entry {
        path: ".b2d/tls".into(),
        kind: EntryKind::Dir,
        mode: 0o755,
        data: vec![],
    });
    a.entries.push(Entry {
        path: ".b2d/tls/key.pem".into(),
        kind: EntryKind::File,
        mode: 0o644,
        data: b"KEY".to_vec(),
    });
    let report = install_b2d(&a, lib.path()).unwrap();
    assert_eq!(
        report.files,
        ["hostname", "bootsync.sh", "ca.pem", "tls/key.pem"]
    );
    assert_eq!(report.dirs, ["tls"]);
    assert!(report.skipped.contains(&".ssh/authorized_keys".to_string()));
    assert_eq!(
        names_in(lib.path()),
        ["bootsync.sh", "ca.pem", "hostname", "tls"]
    );
    assert_eq!(mode_of(&lib.path().join("hostname")), B2D_FILE_MODE);
    assert_eq!(mode_of(&lib.path().join("bootsync.sh")), 0o700);
    assert_eq!(mode_of(&lib.path().join("ca.pem")), 0o700);
    assert_eq!(mode_of(&lib.path().join("tls")), B2D_DIR_MODE);
    assert_eq!(mode_of(&lib.path().join("tls/key.pem")), B2D_FILE_MODE);
    assert_eq!(fs::read(lib.path().join("hostname")).unwrap(), b"box\n");
    if is_root() {
        let md = fs::metadata(lib.path().join("tls/key.pem")).unwrap();
        assert_eq!((md.uid(), md.gid()), (0, 0));
    }
}
