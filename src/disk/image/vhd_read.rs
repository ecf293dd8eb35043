//! Reading VHD images: the footer (or its copy), the dynamic header's
//! checks, and the BAT lookup (see [`super`] for the layout and the size
//! rule).

use super::*;

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
pub(super) fn virtual_size(f: &[u8]) -> u64 {
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

pub(super) fn valid_footer(f: &[u8]) -> bool {
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
    if entries * block > VHD_MAX_SIZE.next_multiple_of(block) {
        return Err(invalid(
            path,
            "max_table_entries",
            format!("{entries} blocks of {block} bytes exceed the 2040 GiB maximum"),
        ));
    }
    if bat > len {
        return Err(invalid(
            path,
            "table_offset",
            format!(
                "{bat} (+{} bytes) is past the end of the file ({len} bytes)",
                entries * 4
            ),
        ));
    }
    if bat + entries * 4 > len {
        return Err(invalid(
            path,
            "max_table_entries",
            format!(
                "{entries} entries ({} bytes) at {bat} run past the end of the file ({len} bytes)",
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
