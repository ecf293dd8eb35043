//! Unit tests for tables, blank detection and hostile input, over images
//! built by hand in memory.

use super::*;
use std::io::Cursor;

pub(super) const MIB: usize = 1 << 20;

pub(super) fn put(v: &mut [u8], off: usize, b: &[u8]) {
    v[off..off + b.len()].copy_from_slice(b);
}

pub(super) fn run(v: &[u8]) -> Report {
    probe(&mut Cursor::new(v), v.len() as u64).expect("in-memory probe cannot fail")
}

/// The Linux filesystem data type GUID in its on-disk (mixed-endian) form.
const LINUX_FS: [u8; 16] = [
    0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4,
];
const LINUX_SWAP: [u8; 16] = [
    0x6D, 0xFD, 0x57, 0x06, 0xAB, 0xA4, 0xC4, 0x43, 0x84, 0xE5, 0x09, 0x33, 0xC8, 0x4B, 0x4F, 0x4F,
];

/// An MBR with the given `(boot flag, type, start LBA, sectors)` slots.
pub(super) fn write_mbr(v: &mut [u8], slots: &[(u8, u8, u32, u32)]) {
    for (i, &(flag, kind, start, n)) in slots.iter().enumerate() {
        let o = 446 + 16 * i;
        v[o] = flag;
        v[o + 4] = kind;
        put(v, o + 8, &start.to_le_bytes());
        put(v, o + 12, &n.to_le_bytes());
    }
    put(v, 510, &[0x55, 0xAA]);
}

/// A complete GPT (protective MBR, primary and backup headers and arrays)
/// for `(type, first LBA, last LBA, name)` partitions, 128 entries.
pub(super) fn write_gpt(v: &mut [u8], sector: usize, parts: &[([u8; 16], u64, u64, &str)]) {
    let lbas = (v.len() / sector) as u64;
    write_mbr(v, &[(0, 0xEE, 1, (lbas - 1).min(u32::MAX as u64) as u32)]);
    let mut array = vec![0u8; 128 * 128];
    for (i, (t, first, last, name)) in parts.iter().enumerate() {
        let e = &mut array[i * 128..(i + 1) * 128];
        put(e, 0, t);
        put(e, 16, &[i as u8 + 1; 16]);
        put(e, 32, &first.to_le_bytes());
        put(e, 40, &last.to_le_bytes());
        for (j, u) in name.encode_utf16().enumerate() {
            put(e, 56 + 2 * j, &u.to_le_bytes());
        }
    }
    let array_sectors = (array.len() / sector) as u64;
    let array_crc = crc32fast::hash(&array);
    let header = |my: u64, alt: u64, entries: u64| {
        let mut h = [0u8; 92];
        put(&mut h, 0, b"EFI PART");
        put(&mut h, 8, &0x0001_0000u32.to_le_bytes());
        put(&mut h, 12, &92u32.to_le_bytes());
        put(&mut h, 24, &my.to_le_bytes());
        put(&mut h, 32, &alt.to_le_bytes());
        put(&mut h, 40, &(2 + array_sectors).to_le_bytes());
        put(&mut h, 48, &(lbas - 2 - array_sectors).to_le_bytes());
        put(&mut h, 56, &[0x42; 16]);
        put(&mut h, 72, &entries.to_le_bytes());
        put(&mut h, 80, &128u32.to_le_bytes());
        put(&mut h, 84, &128u32.to_le_bytes());
        put(&mut h, 88, &array_crc.to_le_bytes());
        let crc = crc32fast::hash(&h);
        put(&mut h, 16, &crc.to_le_bytes());
        h
    };
    let s = sector;
    put(v, s, &header(1, lbas - 1, 2));
    put(v, 2 * s, &array);
    let backup_entries = lbas - 1 - array_sectors;
    put(v, backup_entries as usize * s, &array);
    put(
        v,
        (lbas - 1) as usize * s,
        &header(lbas - 1, 1, backup_entries),
    );
}

fn two_part_gpt(sector: usize) -> Vec<u8> {
    let mut v = vec![0u8; 8 * MIB];
    let spm = (MIB / sector) as u64; // sectors per MiB
    write_gpt(
        &mut v,
        sector,
        &[
            (LINUX_FS, spm, 4 * spm - 1, "boot2docker-data"),
            (LINUX_SWAP, 4 * spm, 7 * spm - 1, "swap"),
        ],
    );
    v
}

fn assert_two_parts(r: &Report) {
    assert_eq!(r.table, Some(TableKind::Gpt));
    assert!(!r.blank);
    let p = &r.partitions;
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(
        (p[0].number, p[0].start, p[0].size),
        (1, MIB as u64, 3 * MIB as u64)
    );
    assert_eq!(p[0].type_id, "0fc63daf-8483-4772-8e79-3d69d8477de4");
    assert_eq!(p[0].name.as_deref(), Some("boot2docker-data"));
    assert_eq!(
        (p[1].number, p[1].start, p[1].size),
        (2, 4 * MIB as u64, 3 * MIB as u64)
    );
    assert_eq!(p[1].type_id, "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f");
    assert_eq!(p[1].name.as_deref(), Some("swap"));
}

#[test]
fn gpt_with_two_partitions() {
    assert_two_parts(&run(&two_part_gpt(512)));
}

#[test]
fn gpt_with_4096_byte_sectors() {
    assert_two_parts(&run(&two_part_gpt(4096)));
}

#[test]
fn corrupt_primary_gpt_falls_back_to_backup() {
    let mut v = two_part_gpt(512);
    v[512 + 40] ^= 0xFF; // header field changed, CRC now wrong
    assert_two_parts(&run(&v));
    let mut v = two_part_gpt(512);
    v[1024 + 32] ^= 0x01; // entry array changed, array CRC now wrong
    assert_two_parts(&run(&v));
}

#[test]
fn both_gpt_headers_corrupt_reports_the_protective_mbr() {
    let mut v = two_part_gpt(512);
    v[512 + 40] ^= 0xFF;
    let last = v.len() - 512;
    v[last + 40] ^= 0xFF;
    let r = run(&v);
    assert_eq!(r.table, Some(TableKind::Mbr));
    assert_eq!(r.partitions.len(), 1);
    assert_eq!(r.partitions[0].type_id, "0xee");
    assert!(!r.blank);
}

#[test]
fn gpt_without_protective_mbr_is_not_believed() {
    let mut v = two_part_gpt(512);
    v[..512].fill(0);
    let r = run(&v);
    assert_eq!(r.table, None);
    assert!(r.partitions.is_empty());
    assert!(!r.blank, "the GPT bytes are not zero");
}

#[test]
fn mbr_with_partitions() {
    let mut v = vec![0u8; 4 * MIB];
    write_mbr(
        &mut v,
        &[
            (0x80, 0x83, 2048, 2048),
            (0, 0, 0, 0),
            (0, 0x82, 4096, 2048),
            (0, 0x05, 6144, 1024),
        ],
    );
    let r = run(&v);
    assert_eq!(r.table, Some(TableKind::Mbr));
    let got: Vec<_> = r
        .partitions
        .iter()
        .map(|p| (p.number, p.start, p.size, p.type_id.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (1, MIB as u64, MIB as u64, "0x83"),
            (3, 2 * MIB as u64, MIB as u64, "0x82"),
            (4, 3 * MIB as u64, MIB as u64 / 2, "0x05")
        ]
    );
    assert!(r.partitions.iter().all(|p| p.name.is_none()));
}

#[test]
fn mbr_with_bad_boot_flag_or_no_entries_is_not_a_table() {
    let mut v = vec![0u8; MIB];
    write_mbr(&mut v, &[(0x12, 0x83, 2048, 100)]);
    assert_eq!(run(&v).table, None);
    let mut v = vec![0u8; MIB];
    write_mbr(&mut v, &[]);
    let r = run(&v);
    assert_eq!(r.table, None);
    assert!(!r.blank, "0x55AA is not zero");
}

#[test]
fn blank_detection() {
    assert!(run(&vec![0u8; 3 * MIB]).blank);
    assert!(run(&vec![0u8; 4096]).blank, "small and zero");
    assert!(!run(&[]).blank, "zero bytes is not a usable disk");
    let mut v = vec![0u8; 3 * MIB];
    *v.last_mut().unwrap() = 1;
    assert!(!run(&v).blank, "tail not zero");
    let mut v = vec![0u8; 3 * MIB];
    v[MIB - 1] = 1;
    assert!(!run(&v).blank, "head not zero");
    let mut v = vec![0u8; 3 * MIB];
    v[MIB + 5] = 1;
    assert!(run(&v).blank, "only the ends are looked at");
}

#[test]
fn reader_shorter_than_claimed_size_is_not_blank_and_not_an_error() {
    let v = vec![0u8; MIB];
    let r = probe(&mut Cursor::new(&v), 4 * MIB as u64).unwrap();
    assert!(!r.blank);
    assert!(r.filesystems.is_empty());
}

/// A tiny xorshift so hostile inputs are reproducible without a crate.
pub(super) fn noise(seed: u64, v: &mut [u8]) {
    let mut x = seed | 1;
    for b in v {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

#[test]
fn random_bytes_never_panic() {
    for seed in 0..64u64 {
        let len = [0usize, 1, 511, 512, 4097, 70_000, 200_000][seed as usize % 7];
        let mut v = vec![0u8; len];
        noise(seed, &mut v);
        let r = run(&v);
        assert!(!r.blank || len == 0 || v.iter().all(|&b| b == 0));
        // The same bytes under a size larger than the reader.
        probe(&mut Cursor::new(&v), u64::MAX).unwrap();
    }
}

#[test]
fn maxed_out_fields_never_panic() {
    // A GPT whose every header and entry field is all-ones, with CRCs made
    // valid so the parser goes all the way in.
    let mut v = two_part_gpt(512);
    for f in [
        (24, 8),
        (32, 8),
        (40, 8),
        (48, 8),
        (72, 8),
        (80, 4),
        (84, 4),
    ] {
        let mut w = v.clone();
        w[512 + f.0..512 + f.0 + f.1].fill(0xFF);
        let crc = {
            let mut h = w[512..512 + 92].to_vec();
            h[16..20].fill(0);
            crc32fast::hash(&h)
        };
        put(&mut w, 512 + 16, &crc.to_le_bytes());
        run(&w);
    }
    // Entries spanning everything, with a valid array CRC.
    v[1024..1024 + 128 * 128].fill(0xFF);
    let crc = crc32fast::hash(&v[1024..1024 + 128 * 128]);
    put(&mut v, 512 + 88, &crc.to_le_bytes());
    let mut h = v[512..512 + 92].to_vec();
    h[16..20].fill(0);
    let hcrc = crc32fast::hash(&h);
    put(&mut v, 512 + 16, &hcrc.to_le_bytes());
    let r = run(&v);
    assert_eq!(r.table, Some(TableKind::Gpt));
    assert!(
        r.partitions.is_empty(),
        "entries outside the usable range are skipped"
    );

    // MBR slots at the largest LBAs.
    let mut v = vec![0u8; MIB];
    write_mbr(&mut v, &[(0x80, 0xFF, u32::MAX, u32::MAX); 4]);
    let r = run(&v);
    assert_eq!(r.partitions.len(), 4);
    assert!(r.filesystems.is_empty());
    // Everything 0xFF.
    run(&vec![0xFFu8; 2 * MIB]);
}
