//! The prober against images made by the real tools (e2fsprogs, mkswap,
//! xfsprogs, btrfs-progs, dosfstools, ntfs-3g, cryptsetup, genisoimage,
//! fdisk, gdisk) on sparse temp files, checked against `blkid -p`.
//!
//! A missing tool is a failure naming the Debian package to install, never a
//! skip: these tests are the proof that the hand-written parsers agree with
//! the formats as the tools actually write them.
//!
//! `volumes` holds the volume-manager and RAID metadata (lvm2, mdadm).

use b2d::disk::probe::{self, FsKind, Report, TableKind};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MIB: u64 = 1 << 20;

#[path = "probe_real_tools/volumes.rs"]
mod volumes;

/// Run `cmd args`, failing the test with the package name if it is missing
/// and with its output if it fails. Returns stdout.
fn run(cmd: &str, package: &str, args: &[&str], stdin: Option<&str>) -> String {
    test_support::need(cmd, package);
    let mut c = Command::new(cmd);
    c.args(args);
    match stdin {
        Some(input) => test_support::ok_fed(&mut c, input.as_bytes()),
        None => test_support::ok(c.stdin(Stdio::null())),
    }
}

/// A sparse file of `size` bytes in its own temp dir.
struct Img {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Img {
    fn new(size: u64) -> Img {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        File::create(&path).unwrap().set_len(size).unwrap();
        Img { _dir: dir, path }
    }
    fn p(&self) -> &str {
        self.path.to_str().unwrap()
    }
    fn probe(&self) -> Report {
        let mut f = File::open(&self.path).unwrap();
        let size = f.seek(SeekFrom::End(0)).unwrap();
        probe::probe(&mut f, size).unwrap()
    }
}

/// `blkid -p -o export` of `path`, optionally of a byte window of it.
fn blkid(path: &str, window: Option<(u64, u64)>) -> HashMap<String, String> {
    let mut args = vec!["-p".to_string(), "-o".into(), "export".into()];
    if let Some((off, len)) = window {
        args.extend(["-O".into(), off.to_string(), "-S".into(), len.to_string()]);
    }
    args.push(path.into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("blkid", "util-linux", &args, None)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), unescape(v)))
        .collect()
}

/// A value of `blkid -o export`, which puts a backslash before spaces and
/// other characters a shell would take apart.
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().unwrap_or(c)
        } else {
            c
        });
    }
    out
}

fn blkid_type(kind: FsKind) -> &'static str {
    match kind {
        FsKind::Ext2 => "ext2",
        FsKind::Ext3 => "ext3",
        FsKind::Ext4 => "ext4",
        FsKind::Swap => "swap",
        FsKind::Luks => "crypto_LUKS",
        FsKind::Xfs => "xfs",
        FsKind::Btrfs => "btrfs",
        FsKind::Vfat => "vfat",
        FsKind::Ntfs => "ntfs",
        FsKind::Iso9660 => "iso9660",
        FsKind::Lvm2 => "LVM2_member",
        FsKind::Md => "linux_raid_member",
        FsKind::Bcache => "bcache",
        FsKind::Zfs => "zfs_member",
        FsKind::Bluestore => "ceph_bluestore",
        FsKind::Vmfs => "VMFS",
    }
}

/// The image holds exactly one whole-device signature, of `kind`, and its
/// type, label and UUID are what blkid says.
fn assert_whole(img: &Img, kind: FsKind, label: Option<&str>) {
    let r = img.probe();
    assert_eq!(r.filesystems.len(), 1, "{kind:?}: {r:?}");
    let f = &r.filesystems[0];
    assert_eq!((f.offset, f.partition, f.kind), (0, None, kind), "{r:?}");
    assert_eq!(r.table, None, "{kind:?}: {r:?}");
    assert!(!r.blank);
    let b = blkid(img.p(), None);
    assert_eq!(
        b.get("TYPE").map(String::as_str),
        Some(blkid_type(kind)),
        "{b:?}"
    );
    assert_eq!(
        f.label.as_deref(),
        b.get("LABEL").map(String::as_str),
        "label vs blkid {b:?}"
    );
    assert_eq!(f.label.as_deref(), label, "label vs what we asked for");
    assert_eq!(
        f.uuid.as_deref(),
        b.get("UUID").map(String::as_str),
        "uuid vs blkid {b:?}"
    );
    assert!(f.uuid.is_some(), "{kind:?} has a UUID");
}

#[test]
fn ext2_ext3_ext4() {
    for (tool, kind) in [
        ("mkfs.ext2", FsKind::Ext2),
        ("mkfs.ext3", FsKind::Ext3),
        ("mkfs.ext4", FsKind::Ext4),
    ] {
        let img = Img::new(64 * MIB);
        run(
            tool,
            "e2fsprogs",
            &["-q", "-F", "-L", "b2d-data", img.p()],
            None,
        );
        assert_whole(&img, kind, Some("b2d-data"));
    }
}

#[test]
fn swap() {
    let img = Img::new(64 * MIB);
    run(
        "mkswap",
        "util-linux",
        &["-L", "boot2dockerswap", img.p()],
        None,
    );
    assert_whole(&img, FsKind::Swap, Some("boot2dockerswap"));
}

#[test]
fn xfs() {
    let img = Img::new(512 * MIB);
    run(
        "mkfs.xfs",
        "xfsprogs",
        &["-q", "-f", "-L", "xfsdata", img.p()],
        None,
    );
    assert_whole(&img, FsKind::Xfs, Some("xfsdata"));
}

#[test]
fn btrfs() {
    let img = Img::new(256 * MIB);
    run(
        "mkfs.btrfs",
        "btrfs-progs",
        &["-q", "-f", "-L", "btrdata", img.p()],
        None,
    );
    assert_whole(&img, FsKind::Btrfs, Some("btrdata"));
}

#[test]
fn vfat_16_and_32() {
    for bits in ["16", "32"] {
        let img = Img::new(64 * MIB);
        run(
            "mkfs.vfat",
            "dosfstools",
            &["-F", bits, "-n", "B2DFAT", img.p()],
            None,
        );
        assert_whole(&img, FsKind::Vfat, Some("B2DFAT"));
    }
}

#[test]
fn ntfs() {
    let img = Img::new(64 * MIB);
    run(
        "mkntfs",
        "ntfs-3g",
        &["-q", "-F", "-f", "-L", "WinData", img.p()],
        None,
    );
    assert_whole(&img, FsKind::Ntfs, Some("WinData"));
}

#[test]
fn luks1_and_luks2() {
    for (ty, label) in [("luks1", None), ("luks2", Some("vault"))] {
        let img = Img::new(32 * MIB);
        let key = img.path.with_file_name("key");
        std::fs::write(&key, b"not a real secret").unwrap();
        let mut args = vec![
            "luksFormat",
            "--batch-mode",
            "--type",
            ty,
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file",
            key.to_str().unwrap(),
        ];
        if let Some(l) = label {
            args.extend(["--label", l]);
        }
        args.push(img.p());
        run("cryptsetup", "cryptsetup-bin", &args, None);
        assert_whole(&img, FsKind::Luks, label);
    }
}

#[test]
fn iso9660() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("hello.txt"), b"hello").unwrap();
    let iso = dir.path().join("out.iso");
    run(
        "genisoimage",
        "genisoimage",
        &[
            "-quiet",
            "-V",
            "B2D_ISO",
            "-o",
            iso.to_str().unwrap(),
            src.to_str().unwrap(),
        ],
        None,
    );
    let img = Img {
        _dir: dir,
        path: iso,
    };
    assert_whole(&img, FsKind::Iso9660, Some("B2D_ISO"));
}

#[test]
fn sparse_zero_file_is_blank() {
    let r = Img::new(2048 * MIB).probe();
    assert!(
        r.blank && r.table.is_none() && r.filesystems.is_empty(),
        "{r:?}"
    );
}

/// Make `tool args <file>` on a separate sparse file of `len` bytes and
/// copy it into `img` at `off`, as if it had been made in that partition.
fn mkfs_at(img: &Img, off: u64, len: u64, tool: &str, package: &str, args: &[&str]) {
    let part = Img::new(len);
    let mut a = args.to_vec();
    a.push(part.p());
    run(tool, package, &a, None);
    let mut src = File::open(&part.path).unwrap();
    let mut dst = OpenOptions::new().write(true).open(&img.path).unwrap();
    dst.seek(SeekFrom::Start(off)).unwrap();
    std::io::copy(&mut src, &mut dst).unwrap();
}

/// A partition as (byte start, byte size, type id, name).
type PartRow = (u64, u64, String, Option<String>);

/// The table label and partitions as `sfdisk --json` lists them.
fn sfdisk_parts(path: &Path) -> (String, Vec<PartRow>) {
    let out = run("sfdisk", "fdisk", &["--json", path.to_str().unwrap()], None);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let t = &v["partitiontable"];
    let sector = t["sectorsize"].as_u64().unwrap_or(512);
    let label = t["label"].as_str().unwrap().to_string();
    let parts = t["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let ty = p["type"].as_str().unwrap().to_lowercase();
            let ty = if label == "dos" {
                format!("0x{ty:0>2}")
            } else {
                ty
            };
            (
                p["start"].as_u64().unwrap() * sector,
                p["size"].as_u64().unwrap() * sector,
                ty,
                p["name"].as_str().map(str::to_string),
            )
        })
        .collect();
    (label, parts)
}

fn assert_table_matches_sfdisk(img: &Img, r: &Report) {
    let (label, want) = sfdisk_parts(&img.path);
    let kind = if label == "gpt" {
        TableKind::Gpt
    } else {
        TableKind::Mbr
    };
    assert_eq!(r.table, Some(kind));
    let got: Vec<_> = r
        .partitions
        .iter()
        .map(|p| (p.start, p.size, p.type_id.clone(), p.name.clone()))
        .collect();
    assert_eq!(got, want);
}

/// Partition 1 holds ext4 (checked against blkid on that window), partition
/// 2 holds swap.
fn assert_partition_fs(img: &Img, r: &Report) {
    for (n, kind, label) in [
        (1, FsKind::Ext4, "boot2docker-data"),
        (2, FsKind::Swap, "boot2dockerswap"),
    ] {
        let p = r
            .partitions
            .iter()
            .find(|p| p.number == n)
            .expect("partition");
        let f = r
            .filesystems
            .iter()
            .find(|f| f.partition == Some(n))
            .expect("filesystem");
        assert_eq!(
            (f.offset, f.kind, f.label.as_deref()),
            (p.start, kind, Some(label))
        );
        let b = blkid(img.p(), Some((p.start, p.size)));
        assert_eq!(
            b.get("TYPE").map(String::as_str),
            Some(blkid_type(kind)),
            "{b:?}"
        );
        assert_eq!(
            f.uuid.as_deref(),
            b.get("UUID").map(String::as_str),
            "{b:?}"
        );
        assert_eq!(
            f.label.as_deref(),
            b.get("LABEL").map(String::as_str),
            "{b:?}"
        );
    }
    assert!(!r.blank);
}

fn fill_partitions(img: &Img) {
    let (_, parts) = sfdisk_parts(&img.path);
    let (s1, l1) = (parts[0].0, parts[0].1);
    let (s2, l2) = (parts[1].0, parts[1].1);
    mkfs_at(
        img,
        s1,
        l1,
        "mkfs.ext4",
        "e2fsprogs",
        &["-q", "-F", "-L", "boot2docker-data"],
    );
    mkfs_at(
        img,
        s2,
        l2,
        "mkswap",
        "util-linux",
        &["-L", "boot2dockerswap"],
    );
}

#[test]
fn gpt_by_sgdisk_with_ext4_and_swap_and_a_broken_primary() {
    let img = Img::new(128 * MIB);
    run(
        "sgdisk",
        "gdisk",
        &[
            "-n",
            "1:2048:+64M",
            "-t",
            "1:8300",
            "-c",
            "1:boot2docker-data",
            "-n",
            "2:0:0",
            "-t",
            "2:8200",
            "-c",
            "2:b2d-swap",
            img.p(),
        ],
        None,
    );
    fill_partitions(&img);
    let r = img.probe();
    assert_eq!(r.partitions.len(), 2);
    assert_eq!(r.partitions[0].name.as_deref(), Some("boot2docker-data"));
    assert_table_matches_sfdisk(&img, &r);
    assert_partition_fs(&img, &r);

    // Wreck the primary header: the backup at the last LBA must carry on.
    let mut f = OpenOptions::new().write(true).open(&img.path).unwrap();
    f.seek(SeekFrom::Start(512)).unwrap();
    f.write_all(&[0u8; 512]).unwrap();
    drop(f);
    let broken = img.probe();
    assert_eq!(broken.partitions, r.partitions);
    assert_eq!(broken.filesystems, r.filesystems);
}

#[test]
fn dos_table_by_sfdisk_with_ext4_and_swap() {
    let img = Img::new(128 * MIB);
    run(
        "sfdisk",
        "fdisk",
        &["-q", img.p()],
        Some("label: dos\n2048,131072,83\n,,82\n"),
    );
    fill_partitions(&img);
    let r = img.probe();
    assert_table_matches_sfdisk(&img, &r);
    assert_partition_fs(&img, &r);
}
