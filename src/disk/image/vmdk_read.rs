//! Reading vmdk monolithicSparse images: the header's checks, and the
//! grain directory / grain table lookup (see [`super`] for the layout).

use super::*;

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
    if gd_sector == 0 || gd_sector.checked_mul(SECTOR).is_none_or(|o| o > len) {
        return Err(invalid(
            path,
            "gdOffset",
            format!("sector {gd_sector} is zero, at the end (streamOptimized) or past the end of the file ({len} bytes)"),
        ));
    }
    if gd_sector * SECTOR + gd_entries * 4 > len {
        return Err(invalid(
            path,
            "capacity",
            format!(
                "{capacity} sectors in grains of {grain_sectors} sectors, {gtes} to a grain table, need a grain directory of {gd_entries} entries, which runs past the end of the file ({len} bytes) from sector {gd_sector}"
            ),
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
