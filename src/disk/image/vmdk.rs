//! VMDK "monolithicSparse": one file holding a hosted sparse extent header
//! ("KDMV", version 1), an embedded text descriptor, and the grain tables.
//!
//! Units are 512-byte sectors. A grain is 128 sectors (64 KiB); a grain table
//! (GT) has 512 four-byte entries and so maps 32 MiB; the grain directory (GD)
//! has one four-byte entry per GT. Layout, in sectors:
//!
//! | sector        | content                                                  |
//! |---------------|----------------------------------------------------------|
//! | 0             | sparse extent header                                     |
//! | 1 ..= 20      | descriptor text, zero padded                             |
//! | 21            | redundant GD, then all redundant GTs (4 sectors each)    |
//! | then          | primary GD, then all primary GTs                         |
//! | then          | padding to a grain boundary ("overhead")                 |
//! | then          | grains holding `head` (all-zero grains skipped)          |
//!
//! Like qemu-img, every GT is preallocated: each GD entry points at its GT,
//! and GTs are all zero (holes in the file) except where `head` lives. Readers
//! that expect fixed GT positions (VirtualBox) and qemu both accept this, and
//! the only non-zero metadata of a 2 TiB disk is its two 256 KiB GDs.
//!
//! The virtual size is rounded up to a whole grain (64 KiB).

use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

use super::layout::{div_ceil, is_zero, round_up, unique_bytes, Layout};
use super::mapped::{
    invalid_data, le32, le64, put_le16, put_le32, put_le64, read_at_most, read_entry, truncated,
    BlockMap, Field, MappedReader, Meta, Run,
};
use super::{DiskImage, FormatLimit, ImageError, ImageFormat, ReadSeek};
use crate::errors::WithPath;

pub(crate) const MAGIC: [u8; 4] = *b"KDMV";
const SECTOR: u64 = 512;
const GRAIN_SECTORS: u64 = 128;
const GRAIN: u64 = GRAIN_SECTORS * SECTOR;
const GTES: u64 = 512;
const GT_SECTORS: u64 = GTES * 4 / SECTOR;
const DESC_OFFSET: u64 = 1;
const DESC_SECTORS: u64 = 20;
/// Flags: bit 0 = newline-corruption check chars are valid, bit 1 = a
/// redundant grain directory is present.
const FLAGS: u32 = 0b11;
const FLAG_COMPRESSED: u32 = 1 << 16;
const FLAG_MARKERS: u32 = 1 << 17;
/// Largest size we write: the GDs then stay at 8 MiB each.
pub const VMDK_MAX_SIZE: u64 = 64 << 40;

pub(crate) fn effective_size(size: u64) -> Result<u64, FormatLimit> {
    let size = round_up(size, GRAIN).ok_or(FormatLimit::TooLarge(size))?;
    if size > VMDK_MAX_SIZE {
        return Err(FormatLimit::Vmdk(size));
    }
    Ok(size)
}

/// Sector positions of the metadata for a disk of `capacity` sectors.
struct Geometry {
    gts: u64,
    rgd: u64,
    rgt: u64,
    gd: u64,
    gt: u64,
    overhead: u64,
}

fn geometry(capacity: u64) -> Geometry {
    let grains = div_ceil(capacity, GRAIN_SECTORS);
    let gts = div_ceil(grains, GTES);
    let gd_sectors = div_ceil(gts * 4, SECTOR);
    let rgd = DESC_OFFSET + DESC_SECTORS;
    let rgt = rgd + gd_sectors;
    let gd = rgt + gts * GT_SECTORS;
    let gt = gd + gd_sectors;
    let overhead = (gt + gts * GT_SECTORS).next_multiple_of(GRAIN_SECTORS);
    Geometry {
        gts,
        rgd,
        rgt,
        gd,
        gt,
        overhead,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn uuid(b: [u8; 16]) -> String {
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The embedded descriptor. The geometry is the usual 16 heads x 63 sectors
/// translation, cylinders capped at 16383 as for ATA.
fn descriptor(capacity: u64, extent_name: &str) -> String {
    let id = unique_bytes(extent_name.as_bytes());
    let cid = u32::from_le_bytes([id[0], id[1], id[2], id[3]]) | 1;
    let cylinders = (capacity / (16 * 63)).min(16383);
    let name = extent_name.replace('"', "_");
    format!(
        "# Disk DescriptorFile\n\
         version=1\n\
         CID={cid:08x}\n\
         parentCID=ffffffff\n\
         createType=\"monolithicSparse\"\n\
         \n\
         # Extent description\n\
         RW {capacity} SPARSE \"{name}\"\n\
         \n\
         # The Disk Data Base\n\
         #DDB\n\
         \n\
         ddb.virtualHWVersion = \"4\"\n\
         ddb.adapterType = \"ide\"\n\
         ddb.geometry.cylinders = \"{cylinders}\"\n\
         ddb.geometry.heads = \"16\"\n\
         ddb.geometry.sectors = \"63\"\n\
         ddb.uuid.image = \"{}\"\n\
         ddb.uuid.parent = \"00000000-0000-0000-0000-000000000000\"\n\
         ddb.uuid.modification = \"00000000-0000-0000-0000-000000000000\"\n\
         ddb.uuid.parentmodification = \"00000000-0000-0000-0000-000000000000\"\n",
        uuid(id),
    )
}

pub(crate) fn layout(size: u64, head: &[u8], extent_name: &str) -> Result<Layout, FormatLimit> {
    let capacity = size / SECTOR;
    let g = geometry(capacity);
    let data: Vec<(u64, &[u8])> = head
        .chunks(GRAIN as usize)
        .enumerate()
        .filter(|(_, c)| !is_zero(c))
        .map(|(i, c)| (i as u64, c))
        .collect();
    let mut l = Layout::new((g.overhead + data.len() as u64 * GRAIN_SECTORS) * SECTOR);

    let mut h = vec![0u8; SECTOR as usize];
    h[0..4].copy_from_slice(&MAGIC);
    put_le32(&mut h, 4, 1); // version
    put_le32(&mut h, 8, FLAGS);
    put_le64(&mut h, 12, capacity);
    put_le64(&mut h, 20, GRAIN_SECTORS);
    put_le64(&mut h, 28, DESC_OFFSET);
    put_le64(&mut h, 36, DESC_SECTORS);
    put_le32(&mut h, 44, GTES as u32);
    put_le64(&mut h, 48, g.rgd);
    put_le64(&mut h, 56, g.gd);
    put_le64(&mut h, 64, g.overhead);
    h[72] = 0; // clean shutdown
    h[73..77].copy_from_slice(b"\n \r\n");
    put_le16(&mut h, 77, 0); // no compression
    l.put(0, h);

    let desc = descriptor(capacity, extent_name);
    if desc.len() as u64 > DESC_SECTORS * SECTOR {
        return Err(FormatLimit::VmdkDescriptor);
    }
    l.put(DESC_OFFSET * SECTOR, desc.into_bytes());

    for (dir, tables) in [(g.rgd, g.rgt), (g.gd, g.gt)] {
        let mut gd = vec![0u8; (g.gts * 4) as usize];
        for i in 0..g.gts {
            put_le32(&mut gd, (i * 4) as usize, (tables + i * GT_SECTORS) as u32);
        }
        l.put(dir * SECTOR, gd);
        // GT entries for the grains of `head`, grouped per table.
        let mut k = 0;
        while k < data.len() {
            let t = data[k].0 / GTES;
            let mut gt = vec![0u8; (GTES * 4) as usize];
            while k < data.len() && data[k].0 / GTES == t {
                let sector = g.overhead + k as u64 * GRAIN_SECTORS;
                put_le32(&mut gt, ((data[k].0 % GTES) * 4) as usize, sector as u32);
                k += 1;
            }
            l.put((tables + t * GT_SECTORS) * SECTOR, gt);
        }
    }
    for (k, (_, bytes)) in data.iter().enumerate() {
        l.put(
            (g.overhead + k as u64 * GRAIN_SECTORS) * SECTOR,
            bytes.to_vec(),
        );
    }
    Ok(l)
}

#[path = "vmdk_read.rs"]
mod read;

pub(crate) use read::open;

#[cfg(test)]
#[path = "vmdk_tests.rs"]
mod tests;
