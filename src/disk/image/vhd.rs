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
use super::{DiskImage, ImageError, ImageFormat, ReadSeek};
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

pub(crate) fn effective_size(size: u64) -> Result<u64, String> {
    if size > VHD_MAX_SIZE {
        return Err(format!(
            "{size} bytes exceeds the VHD maximum of {VHD_MAX_SIZE} bytes (2040 GiB)"
        ));
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

pub(crate) fn layout(size: u64, head: &[u8], now_unix: u64) -> Result<Layout, String> {
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

enum VhdMap {
    Fixed,
    Dynamic {
        bat: u64,
        entries: u64,
        block: u64,
        bitmap: u64,
        /// The footer's copy, the dynamic header, the BAT and the footer:
        /// no block may lie in them.
        tables: [Meta; 4],
        file_len: u64,
        path: PathBuf,
    },
}

impl BlockMap for VhdMap {
    fn lookup(&mut self, file: &mut dyn ReadSeek, off: u64) -> io::Result<Run> {
        let VhdMap::Dynamic {
            bat,
            entries,
            block,
            bitmap,
            tables,
            file_len,
            path,
        } = self
        else {
            return Ok(Run::Data {
                host: off,
                len: u64::MAX - off,
            });
        };
        let idx = off / *block;
        let within = off % *block;
        if idx >= *entries {
            return Err(invalid_data(
                path,
                format!("vhd offset {off} is beyond the BAT"),
            ));
        }
        let e = be32(
            &read_entry::<4>(file, *bat + idx * 4, *file_len, path, "vhd BAT")?,
            0,
        );
        if e == u32::MAX {
            return Ok(Run::Zero {
                len: *block - within,
            });
        }
        let host = u64::from(e) * SECTOR + *bitmap + within;
        if host >= *file_len {
            return Err(invalid_data(
                path,
                format!(
                    "vhd BAT entry {idx}: block at sector {e} is past the end of the file ({file_len} bytes)"
                ),
            ));
        }
        let at = u64::from(e) * SECTOR;
        if let Some(hit) = Meta::first_hit(&tables[..], at, *bitmap + *block) {
            return Err(invalid_data(
                path,
                format!("vhd BAT entry {idx}: block at sector {e} overlaps {hit}"),
            ));
        }
        Ok(Run::Data {
            host,
            len: *block - within,
        })
    }
}

fn invalid(path: &Path, field: &str, msg: impl std::fmt::Display) -> ImageError {
    ImageError::invalid(path, format!("vhd field {field}: {msg}"))
}

/// The footer's fields, as the VHD specification names them.
const FOOTER_FIELDS: [Field; 16] = [
    ("cookie", 0, 8),
    ("features", 8, 12),
    ("file_format_version", 12, 16),
    ("data_offset", 16, 24),
    ("time_stamp", 24, 28),
    ("creator_application", 28, 32),
    ("creator_version", 32, 36),
    ("creator_host_os", 36, 40),
    ("original_size", 40, 48),
    ("current_size", 48, 56),
    ("disk_geometry", 56, 60),
    ("disk_type", 60, 64),
    ("checksum", 64, 68),
    ("unique_id", 68, 84),
    ("saved_state", 84, 85),
    ("reserved", 85, 512),
];

/// The dynamic disk header's fields (its checksum covers all 1024 bytes).
const DYNAMIC_FIELDS: [Field; 13] = [
    ("cookie", 0, 8),
    ("data_offset", 8, 16),
    ("table_offset", 16, 24),
    ("header_version", 24, 28),
    ("max_table_entries", 28, 32),
    ("block_size", 32, 36),
    ("checksum", 36, 40),
    ("parent_unique_id", 40, 56),
    ("parent_time_stamp", 56, 60),
    ("reserved", 60, 64),
    ("parent_unicode_name", 64, 576),
    ("parent_locator_entries", 576, 768),
    ("reserved", 768, 1024),
];

/// The size qemu (and so `qemu-img info`) gives a footer: CHS geometry for
/// unknown creators, the footer's size for Hyper-V-like creators or when the
/// geometry is the maximum.
fn virtual_size(f: &[u8]) -> u64 {
    let g = Chs {
        cylinders: be16(f, 56),
        heads: f[58],
        sectors: f[59],
    };
    let by_size = [b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0"]
        .iter()
        .any(|c| &f[28..32] == *c);
    if by_size || g.total() == MAX_CHS_SECTORS {
        be64(f, 48) / SECTOR * SECTOR
    } else {
        g.total() * SECTOR
    }
}

fn valid_footer(f: &[u8]) -> bool {
    f[..8] == COOKIE && be32(f, 64) == checksum(f, 64)
}

pub(crate) fn open<R: Read + Seek + 'static>(
    mut inner: R,
    len: u64,
    path: &Path,
) -> Result<DiskImage, ImageError> {
    let io = |e| ImageError::from(PathError::new("read the footer of", path, e));
    let mut f = [0u8; SECTOR as usize];
    if len < SECTOR {
        // Detected by the copy at byte 0, cut short.
        return Err(truncated(path, "vhd footer", &FOOTER_FIELDS, len as usize));
    }
    read_at_most(&mut inner, len - SECTOR, &mut f).map_err(io)?;
    let at_end = valid_footer(&f);
    if !at_end {
        // Fall back to the copy at offset 0 (dynamic disks have one).
        let mut copy = [0u8; SECTOR as usize];
        read_at_most(&mut inner, 0, &mut copy).map_err(io)?;
        if !valid_footer(&copy) {
            return Err(invalid(
                path,
                "footer checksum",
                "neither the footer at the end nor its copy at 0 is a valid conectix footer",
            ));
        }
        f = copy;
    }
    let size = virtual_size(&f);
    if size > VHD_MAX_SIZE {
        return Err(invalid(
            path,
            "current_size",
            format!("{size} bytes exceeds the 2040 GiB maximum"),
        ));
    }
    let disk_type = be32(&f, 60);
    let map = match disk_type {
        DISK_FIXED => {
            if size > len - SECTOR {
                return Err(invalid(
                    path,
                    "current_size",
                    format!(
                        "{size} bytes but the fixed disk file holds {} bytes of data",
                        len - SECTOR
                    ),
                ));
            }
            VhdMap::Fixed
        }
        DISK_DYNAMIC => {
            // The metadata no block may lie in: the footer's copy, the
            // footer (when it is there) and, added below, the dynamic
            // header and the BAT.
            let footers = [
                Meta::new("the footer's copy", 0, SECTOR),
                Meta::new("the footer", len - SECTOR, if at_end { SECTOR } else { 0 }),
            ];
            open_dynamic(&mut inner, &f, footers, size, len, path)?
        }
        DISK_DIFFERENCING => {
            return Err(invalid(
                path,
                "disk_type",
                "differencing disk (backing file) not supported",
            ))
        }
        t => return Err(invalid(path, "disk_type", format!("{t} unknown"))),
    };
    Ok(DiskImage {
        format: ImageFormat::Vhd,
        virtual_size: size,
        reader: Box::new(MappedReader::new(inner, map, size, len, path)),
    })
}

fn open_dynamic<R: Read + Seek>(
    inner: &mut R,
    f: &[u8],
    footers: [Meta; 2],
    size: u64,
    len: u64,
    path: &Path,
) -> Result<VhdMap, ImageError> {
    let at = be64(f, 16);
    if at > len {
        return Err(invalid(
            path,
            "data_offset",
            format!("{at} is past the end of the file ({len} bytes)"),
        ));
    }
    if len - at < 1024 {
        return Err(truncated(
            path,
            &format!("vhd dynamic header at byte {at}"),
            &DYNAMIC_FIELDS,
            (len - at) as usize,
        ));
    }
    let header = Meta::new("the dynamic header", at, 1024);
    if let Some(hit) = Meta::first_hit(&footers, at, 1024) {
        return Err(invalid(path, "data_offset", format!("{at} overlaps {hit}")));
    }
    let mut d = [0u8; 1024];
    read_at_most(inner, at, &mut d).with_path("read the dynamic header of", path)?;
    if d[..8] != DYN_COOKIE {
        return Err(invalid(path, "dynamic header cookie", "not cxsparse"));
    }
    if be32(&d, 36) != checksum(&d, 36) {
        return Err(invalid(path, "dynamic header checksum", "mismatch"));
    }
    let bat = be64(&d, 16);
    let entries = u64::from(be32(&d, 28));
    let block = u64::from(be32(&d, 32));
    if block == 0 || block % SECTOR != 0 || block > 1 << 30 {
        return Err(invalid(
            path,
            "block_size",
            format!("{block} is not a multiple of 512 up to 1 GiB"),
        ));
    }
    if entries * block < size {
        return Err(invalid(
            path,
            "max_table_entries",
            format!("{entries} blocks of {block} bytes cannot hold {size} bytes"),
        ));
    }
    if bat.checked_add(entries * 4).is_none_or(|e| e > len) {
        return Err(invalid(
            path,
            "table_offset",
            format!(
                "{bat} (+{} bytes) is past the end of the file ({len} bytes)",
                entries * 4
            ),
        ));
    }
    let [copy, footer] = footers;
    if let Some(hit) = Meta::first_hit(&[copy, header, footer], bat, entries * 4) {
        return Err(invalid(
            path,
            "table_offset",
            format!("{bat} (+{} bytes) overlaps {hit}", entries * 4),
        ));
    }
    let bitmap = div_ceil(block / SECTOR, 8).next_multiple_of(SECTOR);
    Ok(VhdMap::Dynamic {
        bat,
        entries,
        block,
        bitmap,
        tables: [copy, header, Meta::new("the BAT", bat, entries * 4), footer],
        file_len: len,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
#[path = "vhd_tests.rs"]
mod tests;
