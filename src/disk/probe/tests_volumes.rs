//! Unit tests for the members of volume managers and RAID, on images built
//! in memory by `test_support::signatures` (whose md superblocks and LVM2
//! label the real-tool tests check against mdadm and blkid).

use super::tests::{noise, put, run, write_mbr, MIB};
use super::*;
use test_support::signatures::{self, Md, Piece};

/// Name, pieces for a device of `size` bytes, kind, label, UUID, version.
type Case = (
    String,
    Vec<Piece>,
    FsKind,
    Option<&'static str>,
    Option<&'static str>,
    Option<String>,
);

fn cases(size: u64) -> Vec<Case> {
    let mut v: Vec<Case> = Vec::new();
    for sector in 0..4 {
        v.push((
            format!("lvm2 in sector {sector}"),
            signatures::lvm2(sector, size),
            FsKind::Lvm2,
            None,
            Some(signatures::PV_UUID_TEXT),
            Some("LVM2 001".into()),
        ));
    }
    for m in Md::ALL {
        let label = (m != Md::V0_90).then_some("b2d:0");
        v.push((
            format!("md {}", m.name()),
            signatures::md(m, size, "b2d:0"),
            FsKind::Md,
            label,
            Some(signatures::UUID_TEXT),
            Some(m.name().into()),
        ));
    }
    v.push((
        "bcache".into(),
        signatures::bcache("cache0"),
        FsKind::Bcache,
        Some("cache0"),
        Some(signatures::UUID_TEXT),
        None,
    ));
    for be in [false, true] {
        v.push((
            format!("zfs (big-endian {be})"),
            signatures::zfs(be),
            FsKind::Zfs,
            None,
            None,
            Some("5000".into()),
        ));
    }
    v.push((
        "bluestore".into(),
        signatures::bluestore(),
        FsKind::Bluestore,
        None,
        Some(signatures::UUID_TEXT),
        None,
    ));
    v.push((
        "vmfs".into(),
        signatures::vmfs(),
        FsKind::Vmfs,
        None,
        None,
        None,
    ));
    v
}

#[test]
fn each_member_on_the_whole_device() {
    // Sizes that are and are not multiples of 4 and 64 KiB move the md
    // superblocks kept near the end.
    for size in [4 * MIB, 4 * MIB + 3 * 4096 + 512, 5 * MIB - 512] {
        for (name, pieces, kind, label, uuid, version) in cases(size as u64) {
            let mut v = vec![0u8; size];
            signatures::apply(&mut v, &pieces);
            let r = run(&v);
            let want = Filesystem {
                offset: 0,
                partition: None,
                kind,
                label: label.map(str::to_string),
                uuid: uuid.map(str::to_string),
                version,
            };
            assert_eq!(r.filesystems, [want], "{name}, {size} bytes");
            assert_eq!(r.table, None, "{name}");
            assert!(!r.blank, "{name}");
        }
    }
}

#[test]
fn each_member_inside_an_mbr_partition() {
    // Partition 1 spans 1..4 MiB of an 8 MiB disk: the md superblocks that
    // sit near an end are found from the end of the partition.
    let part = 3 * MIB;
    for (name, pieces, kind, label, ..) in cases(part as u64) {
        let mut v = vec![0u8; 8 * MIB];
        write_mbr(&mut v, &[(0, 0xfd, 2048, (part / 512) as u32)]);
        signatures::apply(&mut v[MIB..MIB + part], &pieces);
        let r = run(&v);
        assert_eq!(r.table, Some(TableKind::Mbr), "{name}");
        assert_eq!(r.filesystems.len(), 1, "{name}: {:?}", r.filesystems);
        let f = &r.filesystems[0];
        assert_eq!(
            (f.offset, f.partition, f.kind),
            (MIB as u64, Some(1), kind),
            "{name}"
        );
        assert_eq!(f.label.as_deref(), label, "{name}");
    }
}

#[test]
fn md_superblock_in_the_wrong_place_is_not_its_version() {
    // A 1.2 superblock moved to sector 0 still says it belongs in sector 8.
    let mut v = vec![0u8; 4 * MIB];
    let (_, sb) = signatures::md(Md::V1_2, 4 << 20, "x").remove(0);
    put(&mut v, 0, &sb);
    assert!(run(&v).filesystems.is_empty());
    // An md 1.x magic with another major version.
    let mut v = vec![0u8; 4 * MIB];
    signatures::apply(&mut v, &signatures::md(Md::V1_2, 4 << 20, "x"));
    put(&mut v, 4096 + 4, &2u32.to_le_bytes());
    assert!(run(&v).filesystems.is_empty());
}

#[test]
fn md_090_written_by_a_big_endian_host() {
    let size = 4 * MIB;
    let mut v = vec![0u8; size];
    let (at, mut sb) = signatures::md(Md::V0_90, size as u64, "").remove(0);
    for w in sb.chunks_exact_mut(4) {
        w.reverse();
    }
    put(&mut v, at as usize, &sb);
    let r = run(&v);
    assert_eq!(r.filesystems.len(), 1, "{r:?}");
    assert_eq!(r.filesystems[0].kind, FsKind::Md);
    assert_eq!(r.filesystems[0].version.as_deref(), Some("0.90"));
}

#[test]
fn lvm2_label_must_say_which_sector_it_is_in() {
    let mut v = vec![0u8; 2 * MIB];
    signatures::apply(&mut v, &signatures::lvm2(1, 2 << 20));
    put(&mut v, 512 + 8, &2u64.to_le_bytes());
    assert!(run(&v).filesystems.is_empty());
}

#[test]
fn members_are_named_for_people() {
    let mut names = Vec::new();
    for (name, pieces, ..) in cases(4 << 20) {
        let mut v = vec![0u8; 4 * MIB];
        signatures::apply(&mut v, &pieces);
        let what = run(&v).filesystems[0].what();
        crate::assert_readable(&what);
        names.push((name, what));
    }
    let what = |n: &str| &names.iter().find(|(name, _)| name == n).unwrap().1;
    assert_eq!(what("lvm2 in sector 1"), "LVM2 physical volume");
    assert_eq!(what("md 0.90"), "md RAID member (superblock 0.90)");
    assert_eq!(what("md 1.2"), "md RAID member (superblock 1.2)");
    assert_eq!(what("bcache"), "bcache device");
    assert_eq!(what("zfs (big-endian false)"), "ZFS pool member");
    assert_eq!(what("bluestore"), "Ceph BlueStore device");
    assert_eq!(what("vmfs"), "VMFS datastore");
}

#[test]
fn damaged_members_never_panic_and_tiny_devices_are_not_read_past() {
    for (name, pieces, ..) in cases(4 << 20) {
        for seed in 0..4u64 {
            let mut v = vec![0u8; 4 * MIB];
            signatures::apply(&mut v, &pieces);
            // Noise over everything after each piece's first 8 bytes.
            for (at, bytes) in &pieces {
                let mut junk = vec![0u8; bytes.len().saturating_sub(8)];
                noise(seed + 1, &mut junk);
                put(&mut v, *at as usize + 8, &junk);
            }
            run(&v);
            v.iter_mut().filter(|b| **b != 0).for_each(|b| *b = 0xFF);
            run(&v);
        }
        // The same pieces cut off by a device that ends before any of
        // their magics: nothing is found, nothing is read past the end.
        let mut v = vec![0u8; 4 * MIB];
        signatures::apply(&mut v, &pieces);
        for len in [0, 7, 511, 4100, 64 * 1024, 200 * 1024] {
            if pieces.iter().all(|(at, _)| *at as usize + 4 > len) {
                let r = run(&v[..len]);
                assert!(
                    r.filesystems.is_empty(),
                    "{name} cut at {len} bytes: {:?}",
                    r.filesystems
                );
            }
        }
    }
}
