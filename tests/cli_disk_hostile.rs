//! `b2d disk inspect` on crafted qcow2, vmdk and vhd files: absurd table
//! sizes, absurd or tiny cluster sizes, tables past the end of the file,
//! tables that loop or overlap, headers cut short at every field, sizes
//! that overflow. Each run must answer within 1 s and 64 MiB, with one
//! line naming the file once and the field at fault.
//!
//! Every case patches a small valid image built here (and checked to be
//! valid by `base_images_are_read`), so a refusal is about the patch.

#[path = "hostile/images.rs"]
mod images;
#[path = "hostile/truncated.rs"]
mod truncated;

use images::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use test_support::{measured, Measured};

const B2D: &str = env!("CARGO_BIN_EXE_b2d");

fn inspect(path: &Path) -> Measured {
    let m = measured(
        Command::new(B2D)
            .args(["disk", "inspect", "--json"])
            .arg(path),
        Duration::from_secs(10),
    );
    m.assert_cheap("b2d disk inspect", Duration::from_secs(1), 64 << 20);
    m
}

/// `b2d disk inspect` refuses `path` quickly and cheaply, in one line
/// naming it once and saying each of `words`.
fn refused(path: &Path, words: &[&str]) -> String {
    inspect(path).assert_refused("b2d disk inspect", path, words)
}

/// `b2d disk inspect` reads `path` quickly and cheaply; its report.
fn read(path: &Path) -> serde_json::Value {
    let out = test_support::assert_ok("b2d disk inspect", &inspect(path).output);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn base_images_are_read() {
    let t = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("base.qcow2", qcow2()),
        ("base.vmdk", vmdk()),
        ("base.vhd", vhd()),
    ] {
        let p = file(t.path(), name, &bytes, 0);
        let v = read(&p);
        assert_eq!(v["virtual_size"], GIB, "{name}: {v}");
        assert_eq!(v["magic"], false, "{name}: {v}");
        assert_eq!(v["blank"], false, "{name}: {v}");
    }
}

// --- absurd table sizes -------------------------------------------------

#[test]
fn qcow2_absurd_l1_size() {
    let t = tempfile::tempdir().unwrap();
    let mut b = qcow2();
    put_be32(&mut b, 36, u32::MAX);
    let p = file(t.path(), "l1.qcow2", &b, 0);
    refused(&p, &["qcow2 header field l1_size", "32 MiB"]);
}

#[test]
fn qcow2_absurd_refcount_table() {
    let t = tempfile::tempdir().unwrap();
    let mut b = qcow2();
    put_be32(&mut b, 56, u32::MAX);
    let p = file(t.path(), "clusters.qcow2", &b, 0);
    refused(&p, &["qcow2 header field refcount_table_clusters", "8 MiB"]);
    for (i, offset) in [1u64 << 50, Q_RT as u64 + 8, u64::MAX - 7]
        .into_iter()
        .enumerate()
    {
        let mut b = qcow2();
        put_be64(&mut b, 48, offset);
        let p = file(t.path(), &format!("offset{i}.qcow2"), &b, 0);
        refused(&p, &["qcow2 header field refcount_table_offset"]);
    }
    for order in [7u32, u32::MAX] {
        let mut b = qcow2();
        put_be32(&mut b, 96, order);
        let p = file(t.path(), &format!("order{order}.qcow2"), &b, 0);
        refused(&p, &["qcow2 header field refcount_order", "0..=6"]);
    }
}

#[test]
fn vhd_absurd_block_size() {
    let t = tempfile::tempdir().unwrap();
    for (i, size) in [0u32, 3, 1000, u32::MAX].into_iter().enumerate() {
        let b = vhd_with(|d| put_be32(d, 32, size));
        let p = file(t.path(), &format!("block{i}.vhd"), &b, 0);
        refused(&p, &["vhd field block_size"]);
    }
}

// --- absurd or tiny cluster sizes ---------------------------------------

#[test]
fn qcow2_absurd_cluster_bits() {
    let t = tempfile::tempdir().unwrap();
    for bits in [0u32, 8, 22, 63, 64, u32::MAX] {
        let mut b = qcow2();
        put_be32(&mut b, 20, bits);
        let p = file(t.path(), &format!("c{bits}.qcow2"), &b, 0);
        refused(&p, &["qcow2 header field cluster_bits"]);
    }
}

#[test]
fn vmdk_absurd_grain_size() {
    let t = tempfile::tempdir().unwrap();
    for grain in [0u64, 3, 1 << 18, 1 << 40, u64::MAX] {
        let mut b = vmdk();
        put_le64(&mut b, 20, grain);
        let p = file(t.path(), &format!("g{grain}.vmdk"), &b, 0);
        refused(&p, &["vmdk header field grainSize"]);
    }
    for gtes in [0u32, 1 << 17, u32::MAX] {
        let mut b = vmdk();
        put_le32(&mut b, 44, gtes);
        let p = file(t.path(), &format!("t{gtes}.vmdk"), &b, 0);
        refused(&p, &["vmdk header field numGTEsPerGT"]);
    }
}

/// Tiny clusters and blocks are legal: a 128 GiB qcow2 of 512-byte
/// clusters (a 32 MiB L1 table, sparse) whose every L2 entry maps the one
/// data cluster, a vmdk of one-sector grains, and a vhd of 512-byte
/// blocks are read, quickly.
#[test]
fn tiny_clusters_grains_and_blocks_are_read_quickly() {
    let t = tempfile::tempdir().unwrap();
    // qcow2: L1 entries for the first and the last 2 MiB, each to the one
    // L2 table, whose every entry maps the one data cluster.
    let (cl, l1_at) = (512u64, 1024u64);
    let l1_entries = 128 * GIB / (64 * cl);
    let (l2_at, data_at) = (l1_at + l1_entries * 8, l1_at + l1_entries * 8 + cl);
    let mut h = qcow2()[..104].to_vec();
    put_be32(&mut h, 20, 9);
    put_be64(&mut h, 24, 128 * GIB);
    put_be32(&mut h, 36, l1_entries as u32);
    put_be64(&mut h, 40, l1_at);
    put_be64(&mut h, 48, cl);
    let refcounts = data_at.to_be_bytes();
    let l1: Vec<u8> = (0..64)
        .flat_map(|_| (l2_at | COPIED).to_be_bytes())
        .collect();
    let l2: Vec<u8> = (0..64)
        .flat_map(|_| (data_at | COPIED).to_be_bytes())
        .collect();
    let data = vec![0x5au8; cl as usize];
    let p = sparse(
        t.path(),
        "tiny.qcow2",
        data_at + cl,
        &[
            (0, &h),
            (cl, &refcounts),
            (l1_at, &l1),
            (l2_at - l1.len() as u64, &l1),
            (l2_at, &l2),
            (data_at, &data),
        ],
    );
    assert_eq!(read(&p)["virtual_size"], 128 * GIB);

    // vmdk: one-sector grains, 1024 to a grain table, 32 MiB, every grain
    // the last sector of the file.
    let mut b = vmdk();
    put_le64(&mut b, 12, 64 * 1024);
    put_le64(&mut b, 20, 1);
    put_le32(&mut b, 44, 1024);
    let tables = 64;
    b.resize(V_GT + tables * 4096 + 512, 0x5a);
    let last = (b.len() / 512 - 1) as u32;
    for i in 0..tables {
        let gt = V_GT + i * 4096;
        put_le32(&mut b, V_GD + 4 * i, (gt / 512) as u32);
        for k in 0..1024 {
            put_le32(&mut b, gt + 4 * k, last);
        }
    }
    let p = file(t.path(), "tiny.vmdk", &b, 0);
    assert_eq!(read(&p)["virtual_size"], 32 * MIB);

    // vhd: 512-byte blocks, 1 MiB, every block the one after the BAT.
    let footer = vhd_footer(MIB);
    let mut b = footer.clone();
    b.extend(vhd_dynamic(H_BAT as u64, 2048, 512, |_| {}));
    let block = (H_BAT + 2048 * 4) / 512;
    b.extend((0..2048).flat_map(|_| (block as u32).to_be_bytes()));
    b.resize(b.len() + 1024, 0x5a);
    b.extend_from_slice(&footer);
    let p = file(t.path(), "tiny.vhd", &b, 0);
    assert_eq!(read(&p)["virtual_size"], MIB);
}

// --- tables and data past the end of the file ---------------------------

#[test]
fn qcow2_tables_past_the_end() {
    let t = tempfile::tempdir().unwrap();
    let mut b = qcow2();
    put_be64(&mut b, 40, 1 << 50);
    let p = file(t.path(), "l1.qcow2", &b, 0);
    refused(&p, &["qcow2 header field l1_table_offset", "past the end"]);
    let mut b = qcow2();
    put_be64(&mut b, Q_L1, (1 << 40) | COPIED);
    let p = file(t.path(), "l2.qcow2", &b, 0);
    refused(
        &p,
        &[
            "qcow2 L1 entry 0: L2 table at 1099511627776",
            "past the end of the file",
        ],
    );
    let mut b = qcow2();
    put_be64(&mut b, Q_L2, (1 << 40) | COPIED);
    let p = file(t.path(), "data.qcow2", &b, 0);
    refused(
        &p,
        &[
            "qcow2 L2 entry for cluster 0: data at 1099511627776",
            "past the end of the file",
        ],
    );
}

#[test]
fn vmdk_tables_past_the_end() {
    let t = tempfile::tempdir().unwrap();
    let mut b = vmdk();
    put_le64(&mut b, 56, 1 << 40);
    let p = file(t.path(), "gd.vmdk", &b, 0);
    refused(&p, &["vmdk header field gdOffset", "past the end"]);
    let mut b = vmdk();
    put_le32(&mut b, V_GD, u32::MAX);
    let p = file(t.path(), "gt.vmdk", &b, 0);
    refused(
        &p,
        &[
            "vmdk grain directory entry 0: grain table at sector 4294967295",
            "past the end of the file",
        ],
    );
    let mut b = vmdk();
    put_le32(&mut b, V_GT, u32::MAX);
    let p = file(t.path(), "grain.vmdk", &b, 0);
    refused(
        &p,
        &[
            "vmdk grain table 0 entry 0 (grain 0): grain at sector 4294967295",
            "past the end of the file",
        ],
    );
    let mut b = vmdk();
    put_le64(&mut b, 28, 1 << 40);
    let p = file(t.path(), "desc.vmdk", &b, 0);
    refused(&p, &["vmdk header field descriptorOffset", "past the end"]);
}

#[test]
fn vhd_tables_past_the_end() {
    let t = tempfile::tempdir().unwrap();
    let b = vhd_with(|d| put_be64(d, 16, 1 << 50));
    let p = file(t.path(), "bat.vhd", &b, 0);
    refused(&p, &["vhd field table_offset", "past the end"]);
    let mut b = vhd();
    put_be32(&mut b, H_BAT, 0x7fff_fff0);
    let p = file(t.path(), "block.vhd", &b, 0);
    refused(
        &p,
        &[
            "vhd BAT entry 0: block at sector 2147483632",
            "past the end of the file",
        ],
    );
    for (name, offset) in [("dyn.vhd", 1u64 << 50), ("max.vhd", u64::MAX)] {
        let mut b = vhd();
        let mut f = vhd_footer(GIB);
        put_be64(&mut f, 16, offset);
        vhd_checksum(&mut f, 64);
        let end = b.len() - 512;
        b[end..].copy_from_slice(&f);
        let p = file(t.path(), name, &b, 0);
        refused(&p, &["vhd field data_offset", "past the end"]);
    }
}

// --- tables that loop or overlap ----------------------------------------

#[test]
fn qcow2_tables_that_loop_or_overlap() {
    let t = tempfile::tempdir().unwrap();
    let l1 = Q_L1 as u64;
    let cases: [(&str, usize, u64, &str); 5] = [
        (
            "l1",
            40,
            Q_RT as u64,
            "qcow2 header field l1_table_offset: 65536 (+16 bytes) overlaps the refcount table",
        ),
        (
            "l1-header",
            40,
            0,
            "qcow2 header field l1_table_offset: 0 (+16 bytes) overlaps the header",
        ),
        (
            "l2-loop",
            Q_L1,
            l1 | COPIED,
            "qcow2 L1 entry 0: L2 table at 196608 overlaps the L1 table",
        ),
        (
            "l2-refcounts",
            Q_L1,
            Q_RT as u64 | COPIED,
            "qcow2 L1 entry 0: L2 table at 65536 overlaps the refcount table",
        ),
        (
            "data-l1",
            Q_L2,
            l1 | COPIED,
            "qcow2 L2 entry for cluster 0: data at 196608 overlaps the L1 table",
        ),
    ];
    for (name, at, value, words) in cases {
        let mut b = qcow2();
        put_be64(&mut b, at, value);
        let p = file(t.path(), &format!("{name}.qcow2"), &b, 0);
        refused(&p, &[words]);
    }
    let mut b = qcow2();
    put_be64(&mut b, Q_L2, Q_L2 as u64 | COPIED);
    let p = file(t.path(), "data-loop.qcow2", &b, 0);
    refused(
        &p,
        &["qcow2 L2 entry for cluster 0: data at 262144 overlaps its own L2 table"],
    );
}

#[test]
fn vmdk_tables_that_loop_or_overlap() {
    let t = tempfile::tempdir().unwrap();
    let mut b = vmdk();
    put_le64(&mut b, 56, 1);
    let p = file(t.path(), "gd.vmdk", &b, 0);
    refused(
        &p,
        &[
            "vmdk header field gdOffset: sector 1",
            "overlaps the descriptor",
        ],
    );
    let mut b = vmdk();
    put_le32(&mut b, V_GD, 21);
    let p = file(t.path(), "gt-loop.vmdk", &b, 0);
    refused(
        &p,
        &["vmdk grain directory entry 0: grain table at sector 21 overlaps the grain directory"],
    );
    // (Sector 0 cannot be reached: 0 in a table means "none".)
    for (sector, what) in [
        (2u32, "the descriptor"),
        (21, "the grain directory"),
        (22, "its own grain table"),
    ] {
        let mut b = vmdk();
        put_le32(&mut b, V_GT, sector);
        let p = file(t.path(), &format!("grain{sector}.vmdk"), &b, 0);
        refused(
            &p,
            &[&format!(
                "vmdk grain table 0 entry 0 (grain 0): grain at sector {sector} overlaps {what}"
            )],
        );
    }
}

#[test]
fn vhd_tables_that_loop_or_overlap() {
    let t = tempfile::tempdir().unwrap();
    for (offset, what) in [
        (0u64, "the footer's copy"),
        (H_DYN as u64 + 512, "the dynamic header"),
    ] {
        let b = vhd_with(|d| put_be64(d, 16, offset));
        let p = file(t.path(), &format!("bat{offset}.vhd"), &b, 0);
        refused(
            &p,
            &[
                &format!("vhd field table_offset: {offset}"),
                &format!("overlaps {what}"),
            ],
        );
    }
    for (sector, what) in [
        (0u32, "the footer's copy"),
        (1, "the dynamic header"),
        (3, "the BAT"),
    ] {
        let mut b = vhd();
        put_be32(&mut b, H_BAT, sector);
        let p = file(t.path(), &format!("block{sector}.vhd"), &b, 0);
        refused(
            &p,
            &[&format!(
                "vhd BAT entry 0: block at sector {sector} overlaps {what}"
            )],
        );
    }
}

// --- sizes that overflow ------------------------------------------------

#[test]
fn sizes_that_overflow_name_the_field() {
    let t = tempfile::tempdir().unwrap();
    for (i, (bits, size)) in [(16u32, u64::MAX), (21, 1 << 62)].into_iter().enumerate() {
        let mut b = qcow2();
        put_be32(&mut b, 20, bits);
        put_be64(&mut b, 24, size);
        let p = file(t.path(), &format!("size{i}.qcow2"), &b, 0);
        refused(
            &p,
            &[&format!("qcow2 header field size: {size} bytes exceeds")],
        );
    }
    // An L1 table that starts in the file but is longer than it.
    let mut b = qcow2();
    put_be32(&mut b, 36, 1 << 20);
    let p = file(t.path(), "l1.qcow2", &b, 0);
    refused(
        &p,
        &[
            "qcow2 header field l1_size: 1048576 entries",
            "past the end of the file",
        ],
    );

    let mut b = vmdk();
    put_le64(&mut b, 12, u64::MAX);
    let p = file(t.path(), "cap.vmdk", &b, 0);
    refused(&p, &["vmdk header field capacity"]);
    // One-sector grains, one to a table: a grain directory far larger
    // than the file, from a capacity that fits u64.
    let mut b = vmdk();
    put_le64(&mut b, 12, (1 << 55) - 1);
    put_le64(&mut b, 20, 1);
    put_le32(&mut b, 44, 1);
    let p = file(t.path(), "gd.vmdk", &b, 0);
    refused(
        &p,
        &[
            "vmdk header field capacity: 36028797018963967 sectors",
            "a grain directory of 36028797018963967 entries",
        ],
    );

    let mut b = vhd();
    let mut f = vhd_footer(u64::MAX);
    let end = b.len() - 512;
    vhd_checksum(&mut f, 64);
    b[end..].copy_from_slice(&f);
    let p = file(t.path(), "size.vhd", &b, 0);
    refused(&p, &["vhd field current_size", "2040 GiB"]);
    for (i, entries) in [u32::MAX, 1 << 31, 1 << 20].into_iter().enumerate() {
        let b = vhd_with(|d| put_be32(d, 28, entries));
        let p = file(t.path(), &format!("entries{i}.vhd"), &b, 0);
        refused(&p, &[&format!("vhd field max_table_entries: {entries}")]);
    }
}
