//! The crafted images of `cli_disk_hostile.rs`: small valid qcow2, vmdk
//! and vhd files, built byte by byte, for the tests to break one field at
//! a time, and the writers that put them in files.

use std::path::{Path, PathBuf};

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// `bytes` written to `dir/name`, then extended (sparsely) to `len`.
pub fn file(dir: &Path, name: &str, bytes: &[u8], len: u64) -> PathBuf {
    sparse(dir, name, len.max(bytes.len() as u64), &[(0, bytes)])
}

/// A sparse file `dir/name` of `len` bytes holding `writes` (offset,
/// bytes) and holes elsewhere.
pub fn sparse(dir: &Path, name: &str, len: u64, writes: &[(u64, &[u8])]) -> PathBuf {
    use std::os::unix::fs::FileExt;
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(len).unwrap();
    for (at, bytes) in writes {
        f.write_all_at(bytes, *at).unwrap();
    }
    p
}

pub fn put_be16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
pub fn put_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
pub fn put_be64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}
pub fn put_le32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put_le64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// What the base images hold at virtual byte 0.
pub const DATA: &[u8] = b"not a b2d disk, just bytes";

// qcow2 v3, 64 KiB clusters (C), 1 GiB: header (cluster 0), refcount
// table (1), refcount block (2), L1 table (3), L2 table (4), data (5).
pub const C: usize = 1 << 16;
pub const Q_RT: usize = C;
pub const Q_L1: usize = 3 * C;
pub const Q_L2: usize = 4 * C;
pub const Q_DATA: usize = 5 * C;
pub const COPIED: u64 = 1 << 63;

pub fn qcow2() -> Vec<u8> {
    let mut b = vec![0u8; 6 * C];
    b[..4].copy_from_slice(b"QFI\xfb");
    put_be32(&mut b, 4, 3); // version
    put_be32(&mut b, 20, 16); // cluster_bits
    put_be64(&mut b, 24, GIB); // size
    put_be32(&mut b, 36, 2); // l1_size
    put_be64(&mut b, 40, Q_L1 as u64); // l1_table_offset
    put_be64(&mut b, 48, Q_RT as u64); // refcount_table_offset
    put_be32(&mut b, 56, 1); // refcount_table_clusters
    put_be32(&mut b, 96, 4); // refcount_order
    put_be32(&mut b, 100, 104); // header_length
    put_be64(&mut b, Q_RT, 2 * C as u64);
    for i in 0..6 {
        put_be16(&mut b, 2 * C + 2 * i, 1);
    }
    put_be64(&mut b, Q_L1, Q_L2 as u64 | COPIED);
    put_be64(&mut b, Q_L2, Q_DATA as u64 | COPIED);
    b[Q_DATA..Q_DATA + DATA.len()].copy_from_slice(DATA);
    b
}

// vmdk monolithicSparse, 1 GiB in 64 KiB grains, sectors of 512 bytes:
// header (sector 0), descriptor (1..=20), grain directory (21), grain
// table (22..=25), grain (128..).
pub const V_GD: usize = 21 * 512;
pub const V_GT: usize = 22 * 512;

pub fn vmdk() -> Vec<u8> {
    let mut b = vec![0u8; 256 * 512];
    b[..4].copy_from_slice(b"KDMV");
    put_le32(&mut b, 4, 1); // version
    put_le32(&mut b, 8, 3); // flags
    put_le64(&mut b, 12, GIB / 512); // capacity
    put_le64(&mut b, 20, 128); // grainSize
    put_le64(&mut b, 28, 1); // descriptorOffset
    put_le64(&mut b, 36, 20); // descriptorSize
    put_le32(&mut b, 44, 512); // numGTEsPerGT
    put_le64(&mut b, 56, 21); // gdOffset
    put_le64(&mut b, 64, 128); // overHead
    b[73..77].copy_from_slice(b"\n \r\n");
    let desc = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n\
                createType=\"monolithicSparse\"\nRW 2097152 SPARSE \"t.vmdk\"\n";
    b[512..512 + desc.len()].copy_from_slice(desc.as_bytes());
    put_le32(&mut b, V_GD, 22);
    put_le32(&mut b, V_GT, 128);
    b[128 * 512..128 * 512 + DATA.len()].copy_from_slice(DATA);
    b
}

// vhd dynamic, 1 GiB in 2 MiB blocks: footer copy (0), dynamic header
// (512), BAT (1536, 512 entries), block 0 (bitmap sector at 3584, data
// after it), footer.
pub const H_DYN: usize = 512;
pub const H_BAT: usize = 1536;
pub const H_BLOCK: usize = 3584;
pub const BLOCK: usize = 2 << 20;

pub fn vhd_checksum(b: &mut [u8], at: usize) {
    put_be32(b, at, 0);
    let sum = b.iter().fold(0u32, |s, &x| s.wrapping_add(u32::from(x)));
    put_be32(b, at, !sum);
}

pub fn vhd_footer(size: u64) -> Vec<u8> {
    let mut f = vec![0u8; 512];
    f[..8].copy_from_slice(b"conectix");
    put_be32(&mut f, 8, 2); // features
    put_be32(&mut f, 12, 0x0001_0000); // file_format_version
    put_be64(&mut f, 16, H_DYN as u64); // data_offset
    f[28..32].copy_from_slice(b"qem2"); // creator: the size rules
    put_be64(&mut f, 40, size); // original_size
    put_be64(&mut f, 48, size); // current_size
    put_be16(&mut f, 56, 16383); // geometry
    f[58] = 16;
    f[59] = 63;
    put_be32(&mut f, 60, 3); // disk_type: dynamic
    vhd_checksum(&mut f, 64);
    f
}

/// A dynamic header: BAT at `table_offset`, `entries` blocks of `block`
/// bytes; `patch` may change it before its checksum is set.
pub fn vhd_dynamic(
    table_offset: u64,
    entries: u32,
    block: u32,
    patch: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let mut d = vec![0u8; 1024];
    d[..8].copy_from_slice(b"cxsparse");
    put_be64(&mut d, 8, u64::MAX); // data_offset: none
    put_be64(&mut d, 16, table_offset);
    put_be32(&mut d, 24, 0x0001_0000); // header_version
    put_be32(&mut d, 28, entries); // max_table_entries
    put_be32(&mut d, 32, block); // block_size
    patch(&mut d);
    vhd_checksum(&mut d, 36);
    d
}

/// The base vhd with its dynamic header changed by `patch` (its
/// checksum is set after).
pub fn vhd_with(patch: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let footer = vhd_footer(GIB);
    let mut b = vec![0u8; H_BLOCK + 512 + BLOCK];
    b[..512].copy_from_slice(&footer);
    b[H_DYN..H_DYN + 1024].copy_from_slice(&vhd_dynamic(H_BAT as u64, 512, BLOCK as u32, patch));
    b[H_BAT..H_BAT + 2048].fill(0xff);
    put_be32(&mut b, H_BAT, (H_BLOCK / 512) as u32);
    b[H_BLOCK..H_BLOCK + 512].fill(0xff);
    b[H_BLOCK + 512..H_BLOCK + 512 + DATA.len()].copy_from_slice(DATA);
    b.extend_from_slice(&footer);
    b
}

pub fn vhd() -> Vec<u8> {
    vhd_with(|_| {})
}
