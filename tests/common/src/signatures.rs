//! Metadata of volume managers and storage stacks, built by hand for a
//! device of a given size: an LVM2 physical-volume label, md RAID
//! superblocks (0.90, 1.0, 1.1, 1.2), a bcache superblock, ZFS uberblocks,
//! a Ceph BlueStore label and VMFS headers.
//!
//! Each builder returns the pieces to write as `(byte offset, bytes)`, so
//! one image can be an in-memory buffer or a sparse file of terabytes.
//! The md superblocks and the LVM2 label carry valid checksums: `mdadm
//! --examine` and `blkid -p` accept them as their own tools' work.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// Bytes to write at a byte offset of the device.
pub type Piece = (u64, Vec<u8>);

/// The md superblock magic, little-endian on disk.
const MD_MAGIC: u32 = 0xa92b_4efc;
/// The UUID every builder here writes (16 bytes in on-disk order).
pub const UUID: [u8; 16] = [
    0x3b, 0x5e, 0x8a, 0x01, 0x22, 0x9c, 0x4d, 0x7e, 0x90, 0x1f, 0xa4, 0x6b, 0xc3, 0x08, 0xd2, 0x77,
];
/// [`UUID`] as blkid prints it.
pub const UUID_TEXT: &str = "3b5e8a01-229c-4d7e-901f-a46bc308d277";

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

/// Write `pieces` into `buf` (an in-memory device).
pub fn apply(buf: &mut [u8], pieces: &[Piece]) {
    for (off, bytes) in pieces {
        put(buf, *off as usize, bytes);
    }
}

/// Write `pieces` into the file or device at `path`, in place, and fsync it.
pub fn apply_to(path: &Path, pieces: &[Piece]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (off, bytes) in pieces {
        f.seek(SeekFrom::Start(*off)).unwrap();
        f.write_all(bytes)
            .unwrap_or_else(|e| panic!("{}: writing at {off}: {e}", path.display()));
    }
    f.sync_all().unwrap();
}

/// The md superblock layouts, named as mdadm's `--metadata=` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Md {
    V0_90,
    V1_0,
    V1_1,
    V1_2,
}

impl Md {
    pub const ALL: [Md; 4] = [Md::V0_90, Md::V1_0, Md::V1_1, Md::V1_2];

    /// `0.90`, `1.0`, `1.1`, `1.2`.
    pub fn name(self) -> &'static str {
        match self {
            Md::V0_90 => "0.90",
            Md::V1_0 => "1.0",
            Md::V1_1 => "1.1",
            Md::V1_2 => "1.2",
        }
    }

    /// Byte offset of the superblock on a member of `size` bytes.
    pub fn offset(self, size: u64) -> u64 {
        let sectors = size / 512;
        match self {
            // 64 KiB-aligned, in the last 64..128 KiB.
            Md::V0_90 => ((sectors & !127) - 128) * 512,
            // 8..12 KiB from the end, 4 KiB-aligned.
            Md::V1_0 => ((sectors - 16) & !7) * 512,
            Md::V1_1 => 0,
            Md::V1_2 => 4096,
        }
    }
}

/// An md RAID1 member (2 devices, this one active, the other missing) of
/// `size` bytes, with the array named `name` (1.x only).
pub fn md(version: Md, size: u64, name: &str) -> Vec<Piece> {
    let at = version.offset(size);
    let sb = match version {
        Md::V0_90 => md0(size),
        _ => md1(version, size, at, name),
    };
    vec![(at, sb)]
}

fn md0(size: u64) -> Vec<u8> {
    let mut w = [0u32; 1024];
    w[0] = MD_MAGIC;
    (w[1], w[2], w[3]) = (0, 90, 0);
    // The set UUID is four numbers (words 5, 13, 14, 15), which mdadm
    // and blkid print in hex: [`UUID`] read as big-endian words.
    let word = |i: usize| u32::from_be_bytes([UUID[i], UUID[i + 1], UUID[i + 2], UUID[i + 3]]);
    w[5] = word(0);
    for i in 0..3 {
        w[13 + i] = word(4 + 4 * i);
    }
    w[6] = 1_700_000_000; // ctime
    w[7] = 1; // level
    w[8] = (Md::V0_90.offset(size) / 1024) as u32; // size in KiB: all before the superblock
    (w[9], w[10]) = (1, 2); // nr_disks, raid_disks
    w[32] = 1_700_000_000; // utime
    w[33] = 1; // state: clean
    (w[34], w[35], w[36]) = (1, 1, 1); // active, working, failed
    w[39] = 1; // events
    w[43] = u32::MAX; // recovery_cp: in sync
                      // disks[0] and this_disk: number 0, major/minor 0, raid_disk 0, active|sync.
    w[128 + 4] = 6;
    w[992 + 4] = 6;
    let sum: u64 = w.iter().map(|&x| u64::from(x)).sum();
    w[38] = ((sum & 0xffff_ffff) + (sum >> 32)) as u32;
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn md1(version: Md, size: u64, at: u64, name: &str) -> Vec<u8> {
    const MAX_DEV: usize = 384;
    let mut b = vec![0u8; 4096];
    let data_offset: u64 = match version {
        Md::V1_1 | Md::V1_2 => 2048,
        _ => 0,
    };
    let data_size = match version {
        Md::V1_0 => at / 512,
        _ => size / 512 - data_offset,
    };
    put(&mut b, 0, &MD_MAGIC.to_le_bytes());
    put(&mut b, 4, &1u32.to_le_bytes());
    put(&mut b, 16, &UUID);
    put(&mut b, 32, name.as_bytes());
    put(&mut b, 64, &1_700_000_000u64.to_le_bytes()); // ctime
    put(&mut b, 72, &1u32.to_le_bytes()); // level 1
    put(&mut b, 80, &data_size.to_le_bytes()); // array size, sectors
    put(&mut b, 92, &2u32.to_le_bytes()); // raid_disks
    put(&mut b, 128, &data_offset.to_le_bytes());
    put(&mut b, 136, &data_size.to_le_bytes());
    put(&mut b, 144, &(at / 512).to_le_bytes()); // super_offset
    put(&mut b, 152, &u64::MAX.to_le_bytes()); // recovery_offset
    put(&mut b, 168, &[0x5a; 16]); // device_uuid
    put(&mut b, 192, &1_700_000_000u64.to_le_bytes()); // utime
    put(&mut b, 200, &1u64.to_le_bytes()); // events
    put(&mut b, 208, &u64::MAX.to_le_bytes()); // resync_offset: clean
    put(&mut b, 220, &(MAX_DEV as u32).to_le_bytes());
    for i in 0..MAX_DEV {
        let role: u16 = if i == 0 { 0 } else { 0xffff };
        put(&mut b, 256 + 2 * i, &role.to_le_bytes());
    }
    let sum: u64 = b[..256 + 2 * MAX_DEV]
        .chunks_exact(4)
        .map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .sum();
    let csum = ((sum & 0xffff_ffff) + (sum >> 32)) as u32;
    put(&mut b, 216, &csum.to_le_bytes());
    b
}

/// The LVM2 label checksum: CRC-32 (reflected, polynomial 0xEDB88320)
/// from the seed 0xf597a6cf, with no final inversion.
fn lvm_crc(data: &[u8]) -> u32 {
    let mut crc = 0xf597_a6cfu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// The 32 characters of the PV UUID the LVM2 builder writes.
pub const PV_UUID: &[u8; 32] = b"b2dTstPVuuid0123456789abcdefABCD";
/// [`PV_UUID`] as blkid prints it (6-4-4-4-4-4-6).
pub const PV_UUID_TEXT: &str = "b2dTst-PVuu-id01-2345-6789-abcd-efABCD";

/// An LVM2 physical-volume label in 512-byte sector `sector` (0..=3) of a
/// device of `size` bytes, with one data area from 1 MiB and one metadata
/// area at 4 KiB.
pub fn lvm2(sector: u64, size: u64) -> Vec<Piece> {
    let mut s = vec![0u8; 512];
    put(&mut s, 0, b"LABELONE");
    put(&mut s, 8, &sector.to_le_bytes());
    put(&mut s, 20, &32u32.to_le_bytes());
    put(&mut s, 24, b"LVM2 001");
    put(&mut s, 32, PV_UUID);
    put(&mut s, 64, &size.to_le_bytes());
    // Data areas (offset, size) then a zero entry; metadata areas likewise.
    put(&mut s, 72, &(1u64 << 20).to_le_bytes());
    put(&mut s, 104, &4096u64.to_le_bytes());
    put(&mut s, 112, &((1u64 << 20) - 4096).to_le_bytes());
    let crc = lvm_crc(&s[20..]);
    put(&mut s, 16, &crc.to_le_bytes());
    vec![(sector * 512, s)]
}

/// A bcache backing-device superblock at 4 KiB, labelled `label`.
pub fn bcache(label: &str) -> Vec<Piece> {
    let mut b = vec![0u8; 512];
    put(&mut b, 8, &8u64.to_le_bytes()); // the sector it is written at
    put(&mut b, 16, &1u64.to_le_bytes()); // version: backing device
    put(
        &mut b,
        24,
        &[
            0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba,
            0x6d, 0x81,
        ],
    );
    put(&mut b, 40, &UUID);
    put(&mut b, 72, label.as_bytes());
    vec![(4096, b)]
}

/// ZFS vdev labels 0 and 1 (the two at the front) with a full ring of
/// uberblocks of 1 KiB each; `big_endian` as a SPARC host writes them.
pub fn zfs(big_endian: bool) -> Vec<Piece> {
    let u64b = |v: u64| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut ring = vec![0u8; 128 * 1024];
    for slot in ring.chunks_exact_mut(1024) {
        put(slot, 0, &u64b(0x00ba_b10c));
        put(slot, 8, &u64b(5000));
        put(slot, 16, &u64b(4));
    }
    vec![(128 * 1024, ring.clone()), (256 * 1024 + 128 * 1024, ring)]
}

/// A Ceph BlueStore device label.
pub fn bluestore() -> Vec<Piece> {
    let mut b = b"bluestore block device\n".to_vec();
    b.extend_from_slice(UUID_TEXT.as_bytes());
    b.push(b'\n');
    vec![(0, b)]
}

/// A VMFS datastore: the volume header at 1 MiB, the filesystem at 2 MiB.
pub fn vmfs() -> Vec<Piece> {
    vec![
        (1 << 20, 0xc001_d00du32.to_le_bytes().to_vec()),
        (2 << 20, 0x2fab_f15eu32.to_le_bytes().to_vec()),
    ]
}
