//! Volume-manager and RAID metadata on a disk that also carries a stale
//! b2d format journal (a first boot cut short, the disk then reused): the
//! prober names it as the real tools do, the classifier refuses the disk,
//! and `b2d-init prepare-disk` on a loop device leaves it byte-identical.
//!
//! LVM2 physical volumes are made by `pvcreate` and `vgcreate`. md
//! superblocks cannot be made by `mdadm --create` on a kernel without the
//! md driver (no /proc/mdstat; it fails opening the array device), so they
//! are written by hand in every layout (0.90, 1.0, 1.1, 1.2) and must be
//! accepted by `mdadm --examine` (which checks the magic, the offset the
//! superblock records and its checksum) and by `blkid -p` before the
//! prober is asked about them.

use super::{blkid, run, Img, MIB};
use b2d::disk::journal;
use b2d::disk::probe::{Filesystem, FsKind};
use b2d::disk::userdata::{self, Compat};
use b2d::guest::disk::classify::{self, Verdict};
use std::fs::{File, OpenOptions};
use test_support::loopdev::{Loop, Scratch};
use test_support::signatures::{self, Md};

const INIT: &str = env!("CARGO_BIN_EXE_b2d-init");
const SIZE: u64 = 128 * MIB;
const KEY: &[u8] = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0example probe@test\n";

/// LVM without udev (none runs here, and none in CI) and without writing
/// metadata backups or a devices file on the host.
const LVM_CONFIG: &str = "devices { obtain_device_list_from_udev=0 use_devicesfile=0 } \
     activation { udev_sync=0 udev_rules=0 } backup { backup=0 archive=0 }";

/// A disk whose first boot was cut right after b2d wrote its format
/// journal: the journal is there, nothing else is.
fn interrupted_first_boot() -> Img {
    let img = Img::new(SIZE);
    let archive = userdata::build(KEY, &[], Compat::B2d).unwrap();
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img.path)
        .unwrap();
    journal::write(&mut f, &archive, SIZE, &mut |f: &mut File| f.sync_all()).unwrap();
    img
}

/// The one signature the prober found, which must be on the whole device.
fn only_whole_device(img: &Img, kind: FsKind) -> Filesystem {
    let r = img.probe();
    assert_eq!(r.table, None, "{r:?}");
    assert_eq!(r.filesystems.len(), 1, "{r:?}");
    let f = r.filesystems[0].clone();
    assert_eq!((f.offset, f.partition, f.kind), (0, None, kind), "{r:?}");
    f
}

/// The stale journal still verifies, yet the disk is foreign, named as
/// `what`; `prepare-disk` on it does nothing and writes nothing.
fn assert_left_alone(img: &Img, what: &str) {
    let mut f = File::open(&img.path).unwrap();
    assert!(
        journal::read(&mut f).unwrap().is_some(),
        "the stale journal must still be valid for this test to mean anything"
    );
    match classify::classify(&mut f, SIZE, &img.probe()).unwrap() {
        Verdict::Foreign(why) => assert!(why.contains(what), "{why:?} should name {what:?}"),
        other => panic!("{what}: classified as {other}"),
    }
    drop(f);

    let before = test_support::sha256(&img.path);
    let s = Scratch::new();
    let l = Loop::new(&img.path);
    let v = s.prepare_ok(INIT, &l.dev);
    drop(l);
    assert_eq!(v["action"], "none", "{what}: {v}");
    let notes = v["notes"].to_string();
    assert!(notes.contains(what), "{what}: {notes}");
    assert_eq!(
        test_support::sha256(&img.path),
        before,
        "{what} was modified"
    );
}

fn lvm(cmd: &str, args: &[&str]) {
    test_support::need(cmd, "lvm2");
    let mut c = std::process::Command::new(cmd);
    c.args(["--config", LVM_CONFIG])
        .args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1");
    let out = test_support::output_within(&mut c, std::time::Duration::from_secs(60), String::new);
    test_support::assert_ok(cmd, &out);
}

#[test]
fn lvm2_physical_volume_by_pvcreate_and_vgcreate() {
    for sector in ["1", "0", "3"] {
        let img = interrupted_first_boot();
        let vg = format!("b2dprobe{}s{sector}", std::process::id());
        let l = Loop::new(&img.path);
        lvm("pvcreate", &["--yes", "--labelsector", sector, &l.dev]);
        lvm("vgcreate", &["--yes", &vg, &l.dev]);
        drop(l);

        let f = only_whole_device(&img, FsKind::Lvm2);
        let b = blkid(img.p(), None);
        assert_eq!(b.get("TYPE").map(String::as_str), Some("LVM2_member"));
        assert_eq!(f.uuid.as_deref(), b.get("UUID").map(String::as_str));
        assert_eq!(f.version.as_deref(), b.get("VERSION").map(String::as_str));
        assert_left_alone(&img, "LVM2 physical volume");
    }
}

#[test]
fn lvm2_label_built_by_hand_is_one_blkid_accepts() {
    // The unit tests' hand-built label, checked once against blkid, which
    // verifies the label's checksum.
    let img = Img::new(SIZE);
    signatures::apply_to(&img.path, &signatures::lvm2(2, SIZE));
    let b = blkid(img.p(), None);
    assert_eq!(
        b.get("TYPE").map(String::as_str),
        Some("LVM2_member"),
        "{b:?}"
    );
    assert_eq!(
        b.get("UUID").map(String::as_str),
        Some(signatures::PV_UUID_TEXT)
    );
    let f = only_whole_device(&img, FsKind::Lvm2);
    assert_eq!(f.uuid.as_deref(), Some(signatures::PV_UUID_TEXT));
}

#[test]
fn md_superblocks_of_every_version_as_mdadm_reads_them() {
    for m in Md::ALL {
        let img = interrupted_first_boot();
        signatures::apply_to(&img.path, &signatures::md(m, SIZE, "b2dprobe:0"));
        let l = Loop::new(&img.path);
        let examined = run("mdadm", "mdadm", &["--examine", &l.dev], None);
        drop(l);
        let field = |k: &str| {
            examined
                .lines()
                .find_map(|l| l.trim().strip_prefix(k))
                .map(|v| v.trim_start_matches([' ', ':']).trim().to_string())
                .unwrap_or_else(|| panic!("{}: no {k:?} in mdadm --examine:\n{examined}", m.name()))
        };
        assert!(
            field("Version").starts_with(m.name()),
            "{}: {examined}",
            m.name()
        );
        assert!(
            field("Checksum").ends_with("correct") && !field("Checksum").contains("expected"),
            "{}: {examined}",
            m.name()
        );

        let f = only_whole_device(&img, FsKind::Md);
        assert_eq!(f.version.as_deref(), Some(m.name()));
        let b = blkid(img.p(), None);
        assert_eq!(
            b.get("TYPE").map(String::as_str),
            Some("linux_raid_member"),
            "{}: {b:?}",
            m.name()
        );
        assert!(
            b.get("VERSION").is_some_and(|v| v.starts_with(m.name())),
            "{}: {b:?}",
            m.name()
        );
        assert_eq!(f.uuid.as_deref(), b.get("UUID").map(String::as_str));
        assert_eq!(f.label.as_deref(), b.get("LABEL").map(String::as_str));
        assert_left_alone(&img, &format!("md RAID member (superblock {})", m.name()));
    }
}
