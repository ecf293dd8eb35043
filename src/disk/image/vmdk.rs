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
use super::{DiskImage, ImageError, ImageFormat, ReadSeek};
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

pub(crate) fn effective_size(size: u64) -> Result<u64, String> {
    let size = round_up(size, GRAIN).ok_or_else(|| format!("{size} bytes is too large"))?;
    if size > VMDK_MAX_SIZE {
        return Err(format!(
            "{size} bytes exceeds the supported vmdk maximum of {VMDK_MAX_SIZE} bytes (64 TiB)"
        ));
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

pub(crate) fn layout(size: u64, head: &[u8], extent_name: &str) -> Result<Layout, String> {
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
        return Err("vmdk descriptor does not fit in 20 sectors (file name too long?)".into());
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

struct VmdkMap {
    grain: u64,
    gtes: u64,
    gd_offset: u64,
    gd_entries: u64,
    /// The header, the descriptor and the grain directory: no grain table
    /// or grain may lie in them.
    tables: [Meta; 3],
    file_len: u64,
    path: PathBuf,
}

impl BlockMap for VmdkMap {
    fn lookup(&mut self, file: &mut dyn ReadSeek, off: u64) -> io::Result<Run> {
        let grain_idx = off / self.grain;
        let within = off % self.grain;
        let gt_idx = grain_idx / self.gtes;
        if gt_idx >= self.gd_entries {
            return Err(invalid_data(
                &self.path,
                format!("vmdk offset {off} is beyond the grain directory"),
            ));
        }
        let gde = le32(
            &read_entry::<4>(
                file,
                self.gd_offset + gt_idx * 4,
                self.file_len,
                &self.path,
                "vmdk grain directory",
            )?,
            0,
        );
        if gde == 0 {
            let rest = (self.gtes - grain_idx % self.gtes) * self.grain - within;
            return Ok(Run::Zero { len: rest });
        }
        let gt_at = u64::from(gde) * SECTOR;
        if gt_at + self.gtes * 4 > self.file_len {
            return Err(invalid_data(
                &self.path,
                format!(
                    "vmdk grain directory entry {gt_idx}: grain table at sector {gde} is past the end of the file ({} bytes)",
                    self.file_len
                ),
            ));
        }
        if let Some(hit) = Meta::first_hit(&self.tables, gt_at, self.gtes * 4) {
            return Err(invalid_data(
                &self.path,
                format!(
                    "vmdk grain directory entry {gt_idx}: grain table at sector {gde} overlaps {hit}"
                ),
            ));
        }
        let entry = grain_idx % self.gtes;
        let gte = le32(
            &read_entry::<4>(
                file,
                gt_at + entry * 4,
                self.file_len,
                &self.path,
                "vmdk grain table",
            )?,
            0,
        );
        // 0 = never written, 1 = explicitly zeroed grain.
        if gte <= 1 {
            return Ok(Run::Zero {
                len: self.grain - within,
            });
        }
        if u64::from(gte) * SECTOR + within >= self.file_len {
            return Err(invalid_data(
                &self.path,
                format!(
                    "vmdk grain table {gt_idx} entry {entry} (grain {grain_idx}): grain at sector {gte} is past the end of the file ({} bytes)",
                    self.file_len
                ),
            ));
        }
        let own = Meta::new("its own grain table", gt_at, self.gtes * 4);
        let [header, descriptor, gd] = self.tables;
        let at = u64::from(gte) * SECTOR;
        if let Some(hit) = Meta::first_hit(&[header, descriptor, gd, own], at, self.grain) {
            return Err(invalid_data(
                &self.path,
                format!(
                    "vmdk grain table {gt_idx} entry {entry} (grain {grain_idx}): grain at sector {gte} overlaps {hit}"
                ),
            ));
        }
        Ok(Run::Data {
            host: u64::from(gte) * SECTOR + within,
            len: self.grain - within,
        })
    }
}

fn invalid(path: &Path, field: &str, msg: impl std::fmt::Display) -> ImageError {
    ImageError::invalid(path, format!("vmdk header field {field}: {msg}"))
}

/// The sparse extent header's fields, as VMware's specification names
/// them, up to the last one read.
const FIELDS: [Field; 17] = [
    ("magicNumber", 0, 4),
    ("version", 4, 8),
    ("flags", 8, 12),
    ("capacity", 12, 20),
    ("grainSize", 20, 28),
    ("descriptorOffset", 28, 36),
    ("descriptorSize", 36, 44),
    ("numGTEsPerGT", 44, 48),
    ("rgdOffset", 48, 56),
    ("gdOffset", 56, 64),
    ("overHead", 64, 72),
    ("uncleanShutdown", 72, 73),
    ("singleEndLineChar", 73, 74),
    ("nonEndLineChar", 74, 75),
    ("doubleEndLineChar1", 75, 76),
    ("doubleEndLineChar2", 76, 77),
    ("compressAlgorithm", 77, 79),
];
const HEADER_LEN: usize = 79;

pub(crate) fn open<R: Read + Seek + 'static>(
    mut inner: R,
    len: u64,
    path: &Path,
) -> Result<DiskImage, ImageError> {
    let mut h = [0u8; SECTOR as usize];
    let n = read_at_most(&mut inner, 0, &mut h).with_path("read the header of", path)?;
    if n < HEADER_LEN {
        return Err(truncated(path, "vmdk header", &FIELDS, n));
    }
    if h[..4] != MAGIC {
        return Err(invalid(path, "magicNumber", "not KDMV"));
    }
    let version = le32(&h, 4);
    if !(1..=3).contains(&version) {
        return Err(invalid(
            path,
            "version",
            format!("{version} unsupported (1..=3)"),
        ));
    }
    let flags = le32(&h, 8);
    if flags & (FLAG_COMPRESSED | FLAG_MARKERS) != 0 || u16::from_le_bytes([h[77], h[78]]) != 0 {
        return Err(invalid(
            path,
            "flags/compressAlgorithm",
            format!("{flags:#x}: compressed (streamOptimized) extents are not supported"),
        ));
    }
    let capacity = le64(&h, 12);
    if capacity == 0 || capacity > u64::MAX / SECTOR {
        return Err(invalid(
            path,
            "capacity",
            format!("{capacity} sectors is zero or absurd"),
        ));
    }
    let grain_sectors = le64(&h, 20);
    if !grain_sectors.is_power_of_two() || grain_sectors > 1 << 17 {
        return Err(invalid(
            path,
            "grainSize",
            format!("{grain_sectors} sectors is not a power of two up to 64 MiB"),
        ));
    }
    let gtes = u64::from(le32(&h, 44));
    if !(1..=1 << 16).contains(&gtes) {
        return Err(invalid(
            path,
            "numGTEsPerGT",
            format!("{gtes} outside 1..=65536"),
        ));
    }
    let gd_sector = le64(&h, 56);
    let gd_entries = capacity.div_ceil(grain_sectors * gtes);
    let gd_offset = gd_sector.checked_mul(SECTOR);
    if gd_sector == 0
        || gd_offset
            .and_then(|o| o.checked_add(gd_entries * 4))
            .is_none_or(|e| e > len)
    {
        return Err(invalid(
            path,
            "gdOffset",
            format!("sector {gd_sector} (+{gd_entries} entries) is zero, at the end (streamOptimized) or past the end of the file ({len} bytes)"),
        ));
    }
    check_descriptor(&mut inner, &h, len, path)?;
    let (desc_sector, desc_sectors) = (le64(&h, 28), le64(&h, 36));
    let header = Meta::new("the header", 0, SECTOR);
    let descriptor = Meta::new(
        "the descriptor",
        desc_sector.saturating_mul(SECTOR),
        desc_sectors.saturating_mul(SECTOR),
    );
    let gd = Meta::new("the grain directory", gd_sector * SECTOR, gd_entries * 4);
    if let Some(hit) = Meta::first_hit(&[header, descriptor], gd.start, gd.end - gd.start) {
        return Err(invalid(
            path,
            "gdOffset",
            format!("sector {gd_sector} (+{gd_entries} entries) overlaps {hit}"),
        ));
    }
    let size = capacity * SECTOR;
    let map = VmdkMap {
        grain: grain_sectors * SECTOR,
        gtes,
        gd_offset: gd_sector * SECTOR,
        gd_entries,
        tables: [header, descriptor, gd],
        file_len: len,
        path: path.to_path_buf(),
    };
    Ok(DiskImage {
        format: ImageFormat::Vmdk,
        virtual_size: size,
        reader: Box::new(MappedReader::new(inner, map, size, len, path)),
    })
}

/// Refuse delta disks: an embedded descriptor naming a parent.
fn check_descriptor<R: Read + Seek>(
    inner: &mut R,
    h: &[u8],
    len: u64,
    path: &Path,
) -> Result<(), ImageError> {
    let (off, sectors) = (le64(h, 28), le64(h, 36));
    if off == 0 {
        return Ok(());
    }
    let bytes = sectors.min(2048) * SECTOR;
    if off
        .checked_mul(SECTOR)
        .and_then(|o| o.checked_add(bytes))
        .is_none_or(|e| e > len)
    {
        return Err(invalid(
            path,
            "descriptorOffset",
            format!("sector {off} is past the end of the file ({len} bytes)"),
        ));
    }
    let mut buf = vec![0u8; bytes as usize];
    read_at_most(inner, off * SECTOR, &mut buf).with_path("read the descriptor of", path)?;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let text = String::from_utf8_lossy(&buf[..end]);
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().trim_matches('"').to_ascii_lowercase();
            if k.trim() == "parentCID" && v != "ffffffff" {
                return Err(ImageError::invalid(
                    path,
                    format!(
                        "vmdk descriptor field parentCID: {}: delta disks with a parent (backing file) are not supported",
                        crate::util::printable(&v)
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "vmdk_tests.rs"]
mod tests;
