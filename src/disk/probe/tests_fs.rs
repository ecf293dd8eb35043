//! Unit tests for the filesystem signatures, each built by hand in memory,
//! found both on the whole device and inside a partition.

use super::tests::{noise, put, run, write_mbr, MIB};
use super::*;

const UUID: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
];
const UUID_STR: &str = "01234567-89ab-cdef-1032-547698badcfe";

fn ext(v: &mut [u8], compat: u32, incompat: u32, ro: u32) {
    let sb = 1024;
    put(v, sb + 0x38, &0xEF53u16.to_le_bytes());
    put(v, sb + 0x18, &2u32.to_le_bytes());
    put(v, sb + 0x5C, &compat.to_le_bytes());
    put(v, sb + 0x60, &incompat.to_le_bytes());
    put(v, sb + 0x64, &ro.to_le_bytes());
    put(v, sb + 0x68, &UUID);
    put(v, sb + 0x78, b"boot2docker-data");
}

fn swap(v: &mut [u8], page: usize) {
    put(v, page - 10, b"SWAPSPACE2");
    put(v, 1024, &1u32.to_le_bytes());
    put(v, 1036, &UUID);
    put(v, 1052, b"boot2dockerswap");
}

fn luks(v: &mut [u8], version: u16) {
    put(v, 0, b"LUKS\xba\xbe");
    put(v, 6, &version.to_be_bytes());
    put(v, 168, UUID_STR.as_bytes());
    if version == 2 {
        put(v, 24, b"secret");
    } else {
        put(v, 8, b"aes");
    }
}

fn xfs(v: &mut [u8]) {
    put(v, 0, b"XFSB");
    put(v, 4, &4096u32.to_be_bytes());
    put(v, 32, &UUID);
    put(v, 102, &512u16.to_be_bytes());
    put(v, 108, b"xfslabel");
}

fn btrfs(v: &mut [u8]) {
    let sb = 65536;
    put(v, sb + 32, &UUID);
    put(v, sb + 64, b"_BHRfS_M");
    put(v, sb + 299, b"btrlabel");
}

fn bpb(v: &mut [u8]) {
    put(v, 0, &[0xEB, 0x58, 0x90]);
    put(v, 3, b"mkfs.fat");
    put(v, 11, &512u16.to_le_bytes());
    v[13] = 8;
    put(v, 14, &32u16.to_le_bytes());
    v[16] = 2;
    v[21] = 0xF8;
    put(v, 510, &[0x55, 0xAA]);
}

fn fat32(v: &mut [u8]) {
    bpb(v);
    put(v, 36, &100u32.to_le_bytes());
    v[66] = 0x29;
    put(v, 67, &0x1234_ABCDu32.to_le_bytes());
    put(v, 71, b"MYFAT      ");
    put(v, 82, b"FAT32   ");
}

fn fat16(v: &mut [u8]) {
    bpb(v);
    put(v, 22, &20u16.to_le_bytes());
    v[38] = 0x29;
    put(v, 39, &0x0000_BEEFu32.to_le_bytes());
    put(v, 43, b"NO NAME    ");
    put(v, 54, b"FAT16   ");
}

fn ntfs(v: &mut [u8]) {
    put(v, 0, &[0xEB, 0x52, 0x90]);
    put(v, 3, b"NTFS    ");
    put(v, 11, &512u16.to_le_bytes());
    v[13] = 8; // 4 KiB clusters
    put(v, 0x30, &4u64.to_le_bytes()); // MFT at 16 KiB
    v[0x40] = 0xF6; // 2^10 = 1 KiB records
    put(v, 0x48, &0x0123_4567_89AB_CDEFu64.to_le_bytes());
    put(v, 510, &[0x55, 0xAA]);
    let rec = 16384 + 3 * 1024;
    put(v, rec, b"FILE");
    put(v, rec + 4, &0x30u16.to_le_bytes());
    put(v, rec + 6, &3u16.to_le_bytes());
    put(v, rec + 0x14, &0x38u16.to_le_bytes());
    put(v, rec + 0x30, &[7, 0, 0xAA, 0xBB, 0xCC, 0xDD]);
    let name: Vec<u8> = "Windaten"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let a = rec + 0x38;
    put(v, a, &0x60u32.to_le_bytes());
    put(v, a + 4, &48u32.to_le_bytes());
    put(v, a + 0x10, &(name.len() as u32).to_le_bytes());
    put(v, a + 0x14, &24u16.to_le_bytes());
    put(v, a + 24, &name);
    put(v, a + 48, &0xFFFF_FFFFu32.to_le_bytes());
    // Sector ends carry the sequence number; the real bytes are in the array.
    put(v, rec + 510, &[7, 0]);
    put(v, rec + 1022, &[7, 0]);
}

fn iso(v: &mut [u8]) {
    let pvd = 32768;
    put(v, pvd, b"\x01CD001\x01");
    put(v, pvd + 40, format!("{:<32}", "B2D_ISO").as_bytes());
    put(v, pvd + 813, b"2024011512304500\0");
    put(v, pvd + 830, b"2024011512304500\0");
}

type Build = fn(&mut [u8]);
/// Name, builder, expected kind, label and UUID.
type Case = (
    &'static str,
    Build,
    FsKind,
    Option<&'static str>,
    Option<&'static str>,
);

fn cases() -> Vec<Case> {
    vec![
        (
            "ext2",
            |v| ext(v, 0x38, 0x2, 0x3),
            FsKind::Ext2,
            Some("boot2docker-data"),
            Some(UUID_STR),
        ),
        (
            "ext3",
            |v| ext(v, 0x3C, 0x2, 0x3),
            FsKind::Ext3,
            Some("boot2docker-data"),
            Some(UUID_STR),
        ),
        (
            "ext4",
            |v| ext(v, 0x3C, 0x2C2, 0x46B),
            FsKind::Ext4,
            Some("boot2docker-data"),
            Some(UUID_STR),
        ),
        (
            "ext4-nojournal",
            |v| ext(v, 0x38, 0x40, 0x3),
            FsKind::Ext4,
            Some("boot2docker-data"),
            Some(UUID_STR),
        ),
        (
            "swap4k",
            |v| swap(v, 4096),
            FsKind::Swap,
            Some("boot2dockerswap"),
            Some(UUID_STR),
        ),
        (
            "swap64k",
            |v| swap(v, 65536),
            FsKind::Swap,
            Some("boot2dockerswap"),
            Some(UUID_STR),
        ),
        ("luks1", |v| luks(v, 1), FsKind::Luks, None, Some(UUID_STR)),
        (
            "luks2",
            |v| luks(v, 2),
            FsKind::Luks,
            Some("secret"),
            Some(UUID_STR),
        ),
        ("xfs", xfs, FsKind::Xfs, Some("xfslabel"), Some(UUID_STR)),
        (
            "btrfs",
            btrfs,
            FsKind::Btrfs,
            Some("btrlabel"),
            Some(UUID_STR),
        ),
        (
            "fat32",
            fat32,
            FsKind::Vfat,
            Some("MYFAT"),
            Some("1234-ABCD"),
        ),
        ("fat16", fat16, FsKind::Vfat, None, Some("0000-BEEF")),
        (
            "ntfs",
            ntfs,
            FsKind::Ntfs,
            Some("Windaten"),
            Some("0123456789ABCDEF"),
        ),
        (
            "iso",
            iso,
            FsKind::Iso9660,
            Some("B2D_ISO"),
            Some("2024-01-15-12-30-45-00"),
        ),
    ]
}

#[test]
fn each_signature_on_the_whole_device() {
    for (name, build, kind, label, uuid) in cases() {
        let mut v = vec![0u8; 2 * MIB];
        build(&mut v);
        let r = run(&v);
        let want = Filesystem {
            offset: 0,
            partition: None,
            kind,
            label: label.map(str::to_string),
            uuid: uuid.map(str::to_string),
            version: None,
        };
        assert_eq!(r.filesystems, [want], "{name}");
        assert_eq!(r.table, None, "{name}");
        assert!(!r.blank, "{name}");
    }
}

#[test]
fn each_signature_inside_an_mbr_partition() {
    for (name, build, kind, label, _) in cases() {
        let mut v = vec![0u8; 4 * MIB];
        write_mbr(&mut v, &[(0, 0x83, 2048, 4096)]);
        build(&mut v[MIB..]);
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
fn partition_too_small_for_its_signature_is_not_read_past_its_end() {
    // btrfs' superblock lies at 64 KiB: a 32 KiB partition cannot hold it.
    let mut v = vec![0u8; 4 * MIB];
    write_mbr(&mut v, &[(0, 0x83, 2048, 64)]);
    btrfs(&mut v[MIB..]);
    assert!(run(&v).filesystems.is_empty());
}

#[test]
fn ext_journal_device_and_silly_block_size_are_rejected() {
    let mut v = vec![0u8; MIB];
    ext(&mut v, 0, 0x8, 0);
    assert!(run(&v).filesystems.is_empty());
    let mut v = vec![0u8; MIB];
    ext(&mut v, 0, 0, 0);
    put(&mut v, 1024 + 0x18, &u32::MAX.to_le_bytes());
    assert!(run(&v).filesystems.is_empty());
}

#[test]
fn fat_boot_sector_is_not_taken_for_an_mbr() {
    let mut v = vec![0u8; MIB];
    fat32(&mut v);
    assert_eq!(run(&v).table, None);
}

#[test]
fn signature_headers_filled_with_noise_or_ones_never_panic() {
    for (name, build, ..) in cases() {
        for seed in 0..16u64 {
            let mut v = vec![0u8; 2 * MIB];
            build(&mut v);
            // Scribble over the bytes after each magic.
            let mut junk = [0u8; 4096];
            noise(seed + 1, &mut junk);
            for at in [
                8usize,
                1024 + 0x3A,
                16384 + 3 * 1024 + 8,
                32768 + 8,
                65536 + 72,
            ] {
                let keep = v[at - 8..at].to_vec();
                let n = (v.len() - at).min(1000);
                put(&mut v, at, &junk[..n]);
                put(&mut v, at - 8, &keep);
            }
            run(&v);
            v.iter_mut().filter(|b| **b != 0).for_each(|b| *b = 0xFF);
            run(&v);
            let _ = name;
        }
    }
}

#[test]
fn serializes_for_inspect_json() {
    let mut v = vec![0u8; 2 * MIB];
    swap(&mut v, 4096);
    let json = serde_json::to_string(&run(&v)).unwrap();
    assert!(json.contains(r#""kind":"swap""#), "{json}");
    assert!(json.contains(r#""table":null"#), "{json}");
}
