//! VHD (Virtual PC / Hyper-V "vpc") dynamic disks.
//!
//! File layout we write (all integers big-endian):
//!
//! | offset            | content                                             |
//! |-------------------|-----------------------------------------------------|
//! | 0                 | copy of the footer (512 bytes)                      |
//! | 512               | dynamic disk header (1024 bytes), "cxsparse"        |
//! | 1536              | block allocation table (BAT): one u32 per 2 MiB block, 0xFFFFFFFF = unallocated, padded to a sector |
//! | then              | blocks holding `head`: a 512-byte sector bitmap (all ones) then 2 MiB of data (all-zero blocks skipped) |
//! | end - 512         | the footer, "conectix"                              |
//!
//! Costs: the BAT cannot be a hole because "unallocated" is all ones, so a
//! VHD of size S spends S / 2 MiB * 4 bytes of real blocks on it: about
//! 4 MiB at the 2040 GiB maximum. The 2 MiB block size is what Virtual PC,
//! Hyper-V, VirtualBox and qemu all use by default.
//!
//! Size: VHD addresses sectors with 32 bits and qemu caps it at 2040 GiB
//! ([`VHD_MAX_SIZE`]). The footer carries a size and a CHS geometry, and
//! readers disagree which one rules: qemu trusts the geometry unless the
//! creator is one of a few known tools or the geometry is the maximum
//! 65535/16/255. We therefore round the requested size up to the first size
//! whose geometry (per the VHD specification's algorithm) covers it exactly,
//! like `qemu-img create` does, so size and geometry agree and every reader
//! sees the same disk. From about 127.5 GiB the geometry saturates at the
//! maximum; then the size is kept as asked (rounded to a sector) and every
//! reader uses it. Our reader applies qemu's rule so
//! [`DiskImage::virtual_size`](super::DiskImage) equals `qemu-img info`.

use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

use super::layout::{div_ceil, is_zero, round_up, unique_bytes, Layout};
use super::mapped::{
    be16, be32, be64, invalid_data, put_be16, put_be32, put_be64, read_at_most, read_entry,
    truncated, BlockMap, Field, MappedReader, Meta, Run,
};
use super::{DiskImage, FormatLimit, ImageError, ImageFormat, ReadSeek};
use crate::errors::{PathError, WithPath};

pub(crate) const COOKIE: [u8; 8] = *b"conectix";
const DYN_COOKIE: [u8; 8] = *b"cxsparse";
const SECTOR: u64 = 512;
const BLOCK: u64 = 2 << 20;
/// Largest virtual size: 0xFF000000 sectors = 2040 GiB (qemu's limit).
pub const VHD_MAX_SIZE: u64 = 0xFF00_0000 * SECTOR;
/// Sectors addressed by the largest CHS geometry, 65535 x 16 x 255.
const MAX_CHS_SECTORS: u64 = 65535 * 16 * 255;
const BAT_OFFSET: u64 = 1536;
const DISK_FIXED: u32 = 2;
const DISK_DYNAMIC: u32 = 3;
const DISK_DIFFERENCING: u32 = 4;
/// Seconds from the Unix epoch to 2000-01-01 00:00 UTC, the VHD epoch.
const VHD_EPOCH: u64 = 946_684_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chs {
    pub cylinders: u16,
    pub heads: u8,
    pub sectors: u8,
}

impl Chs {
    fn total(self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.sectors)
    }
}

/// The geometry the VHD specification assigns to a disk of `total` sectors:
/// prefer 17 sectors per track with 4..16 heads, then 31, then 63 with 16
/// heads, and 255 sectors per track above 65535 x 16 x 63; cylinders are
/// capped at 65535.
pub(crate) fn chs(total: u64) -> Chs {
    let total = total.min(MAX_CHS_SECTORS);
    let (spt, heads, per_cyl);
    if total >= 65535 * 16 * 63 {
        (spt, heads) = (255, 16);
        per_cyl = total / spt;
    } else {
        let mut s = 17;
        let mut cth = total / s;
        let mut h = cth.div_ceil(1024).max(4);
        if cth >= h * 1024 || h > 16 {
            (s, h) = (31, 16);
            cth = total / s;
        }
        if cth >= h * 1024 {
            (s, h) = (63, 16);
            cth = total / s;
        }
        (spt, heads, per_cyl) = (s, h, cth);
    }
    Chs {
        cylinders: (per_cyl / heads) as u16,
        heads: heads as u8,
        sectors: spt as u8,
    }
}

pub(crate) fn effective_size(size: u64) -> Result<u64, FormatLimit> {
    if size > VHD_MAX_SIZE {
        return Err(FormatLimit::Vhd(size));
    }
    // Below the cap, rounding up to a sector cannot overflow.
    let want = round_up(size, SECTOR).unwrap_or(VHD_MAX_SIZE) / SECTOR;
    if want >= MAX_CHS_SECTORS {
        return Ok(want * SECTOR);
    }
    // Geometry is monotonic in the sector count, and each step of the input
    // moves the product by at most one cylinder (<= 16 x 255 sectors).
    let mut n = want;
    loop {
        let g = chs(n);
        if g.total() >= want {
            return Ok(g.total() * SECTOR);
        }
        n += 1;
    }
}

fn checksum(b: &[u8], field: usize) -> u32 {
    let sum = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |s, (_, &x)| s.wrapping_add(u32::from(x)));
    !sum
}

fn footer(size: u64, now_unix: u64) -> Vec<u8> {
    let g = chs(size / SECTOR);
    let mut f = vec![0u8; SECTOR as usize];
    f[0..8].copy_from_slice(&COOKIE);
    put_be32(&mut f, 8, 2); // features: "reserved" bit, always set
    put_be32(&mut f, 12, 0x0001_0000); // format version 1.0
    put_be64(&mut f, 16, SECTOR); // dynamic header offset
    put_be32(
        &mut f,
        24,
        now_unix.saturating_sub(VHD_EPOCH).min(u64::from(u32::MAX)) as u32,
    );
    f[28..32].copy_from_slice(b"b2d ");
    put_be32(&mut f, 32, 0x0001_0000); // creator version
    f[36..40].copy_from_slice(b"Wi2k"); // creator host OS (the spec knows Windows and Mac)
    put_be64(&mut f, 40, size);
    put_be64(&mut f, 48, size);
    put_be16(&mut f, 56, g.cylinders);
    f[58] = g.heads;
    f[59] = g.sectors;
    put_be32(&mut f, 60, DISK_DYNAMIC);
    f[68..84].copy_from_slice(&unique_bytes(b"vhd"));
    let c = checksum(&f, 64);
    put_be32(&mut f, 64, c);
    f
}

pub(crate) fn layout(size: u64, head: &[u8], now_unix: u64) -> Result<Layout, FormatLimit> {
    let entries = div_ceil(size, BLOCK);
    let bat_bytes = (entries * 4).next_multiple_of(SECTOR);
    let blocks_at = BAT_OFFSET + bat_bytes;
    let data: Vec<(u64, &[u8])> = head
        .chunks(BLOCK as usize)
        .enumerate()
        .filter(|(_, c)| !is_zero(c))
        .map(|(i, c)| (i as u64, c))
        .collect();
    let stride = SECTOR + BLOCK;
    let footer_at = blocks_at + data.len() as u64 * stride;
    let mut l = Layout::new(footer_at + SECTOR);

    let f = footer(size, now_unix);
    l.put(0, f.clone());
    l.put(footer_at, f);

    let mut d = vec![0u8; 1024];
    d[0..8].copy_from_slice(&DYN_COOKIE);
    put_be64(&mut d, 8, u64::MAX); // next structure: none
    put_be64(&mut d, 16, BAT_OFFSET);
    put_be32(&mut d, 24, 0x0001_0000);
    put_be32(&mut d, 28, entries as u32);
    put_be32(&mut d, 32, BLOCK as u32);
    let c = checksum(&d, 36);
    put_be32(&mut d, 36, c);
    l.put(SECTOR, d);

    let mut bat = vec![0xFFu8; (entries * 4) as usize];
    for (k, (idx, _)) in data.iter().enumerate() {
        let sector = (blocks_at + k as u64 * stride) / SECTOR;
        put_be32(&mut bat, (idx * 4) as usize, sector as u32);
    }
    l.put(BAT_OFFSET, bat);
    for (k, (_, bytes)) in data.iter().enumerate() {
        let at = blocks_at + k as u64 * stride;
        l.put(at, vec![0xFF; SECTOR as usize]);
        l.put(at + SECTOR, bytes.to_vec());
    }
    Ok(l)
}

#[path = "vhd_read.rs"]
mod read;

pub(crate) use read::open;
#[cfg(test)]
use read::*;

#[cfg(test)]
#[path = "vhd_tests.rs"]
mod tests;
