//! Disks that belong to a volume manager or a RAID array (LVM2, md,
//! bcache, ZFS, Ceph, VMFS) are never written, even when a stale b2d
//! format journal from an interrupted first boot is still on them, and
//! the console says what they are.

use super::tests::{magic_archive, sha, Rig};
use super::*;
use crate::disk::journal;
use test_support::signatures::{self, Md, Piece};

const GIB: u64 = 1 << 30;

/// A disk of `size` bytes: first an interrupted b2d format (its journal),
/// then the user's tool wrote `pieces` over it.
fn reused_disk(rig: &Rig, name: &str, size: u64, pieces: &[Piece]) -> PathBuf {
    let d = rig.disk(name, size, &[]);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&d)
        .unwrap();
    journal::write(&mut f, &magic_archive(), size, &mut |_| Ok(())).unwrap();
    drop(f);
    signatures::apply_to(&d, pieces);
    let mut f = std::fs::File::open(&d).unwrap();
    assert!(
        journal::read(&mut f).unwrap().is_some(),
        "{name}: the stale journal must still verify"
    );
    d
}

fn cases(size: u64) -> Vec<(&'static str, Vec<Piece>, String)> {
    let mut v = vec![
        (
            "lvm2",
            signatures::lvm2(1, size),
            "LVM2 physical volume".to_string(),
        ),
        (
            "lvm2-sector3",
            signatures::lvm2(3, size),
            "LVM2 physical volume".to_string(),
        ),
        ("bcache", signatures::bcache("cache0"), "bcache".into()),
        ("zfs", signatures::zfs(false), "ZFS".into()),
        ("zfs-be", signatures::zfs(true), "ZFS".into()),
        (
            "bluestore",
            signatures::bluestore(),
            "Ceph BlueStore".into(),
        ),
        ("vmfs", signatures::vmfs(), "VMFS".into()),
    ];
    for m in Md::ALL {
        v.push((
            m.name(),
            signatures::md(m, size, "b2d:0"),
            format!("md RAID member (superblock {})", m.name()),
        ));
    }
    v
}

#[test]
fn a_stale_journal_does_not_resume_over_a_volume_member() {
    for size in [2 * GIB, 2 * GIB + 3 * 4096 + 512] {
        for (name, pieces, what) in cases(size) {
            let rig = Rig::new();
            let d = reused_disk(&rig, "sdx", size, &pieces);
            let before = sha(&d);
            let out = prepare(&rig.sys, &rig.opts(&[&d])).unwrap();
            assert_eq!(out.action, Action::None, "{name} ({size} bytes): {out:?}");
            assert_eq!(sha(&d), before, "{name} ({size} bytes) was written");
            assert!(
                rig.sys.calls().iter().all(|c| c.starts_with("device_size")),
                "{name}: {:?}",
                rig.sys.calls()
            );
            let note = out.notes.join("; ");
            assert!(
                note.contains("not ours, left alone") && note.contains(&what),
                "{name}: the note should name {what:?}: {note}"
            );
            crate::assert_readable(&note);
        }
    }
}

#[test]
fn a_volume_member_with_the_magic_is_not_formatted() {
    // The userdata archive at byte 0, and md 1.0 metadata at the end: a
    // magic disk someone added to a mirror.
    let rig = Rig::new();
    let d = rig.disk("sdy", 2 * GIB, &magic_archive());
    signatures::apply_to(&d, &signatures::md(Md::V1_0, 2 * GIB, "b2d:1"));
    let before = sha(&d);
    let out = prepare(&rig.sys, &rig.opts(&[&d])).unwrap();
    assert_eq!(out.action, Action::None, "{out:?}");
    assert_eq!(sha(&d), before);
    let note = out.notes.join("; ");
    assert!(
        note.contains("magic present but the disk also holds md RAID member (superblock 1.0)"),
        "{note}"
    );
}
