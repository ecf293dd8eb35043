//! Reading qcow2 images: the header's checks, and the L1/L2 lookup that
//! maps a virtual offset to a host cluster (see [`super`] for the layout).

use super::*;
use crate::disk::image::mapped::invalid_data;

/// The parsed header fields the reader needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub version: u32,
    pub cluster_bits: u32,
    pub size: u64,
    pub l1_size: u64,
    pub l1_offset: u64,
    /// The header cluster, the L1 table and the refcount table: no L2
    /// table or data cluster may lie in them.
    pub tables: [Meta; 3],
}

fn invalid(path: &Path, field: &str, msg: impl std::fmt::Display) -> ImageError {
    ImageError::invalid(path, format!("qcow2 header field {field}: {msg}"))
}

/// The header's fields: version 2 has the first 72 bytes, version 3 all.
const FIELDS: [Field; 18] = [
    ("magic", 0, 4),
    ("version", 4, 8),
    ("backing_file_offset", 8, 16),
    ("backing_file_size", 16, 20),
    ("cluster_bits", 20, 24),
    ("size", 24, 32),
    ("crypt_method", 32, 36),
    ("l1_size", 36, 40),
    ("l1_table_offset", 40, 48),
    ("refcount_table_offset", 48, 56),
    ("refcount_table_clusters", 56, 60),
    ("nb_snapshots", 60, 64),
    ("snapshots_offset", 64, 72),
    ("incompatible_features", 72, 80),
    ("compatible_features", 80, 88),
    ("autoclear_features", 88, 96),
    ("refcount_order", 96, 100),
    ("header_length", 100, 104),
];
const HEADER_LEN_V2: usize = 72;

pub(crate) fn parse_header(b: &[u8], file_len: u64, path: &Path) -> Result<Header, ImageError> {
    if b.len() < 8 {
        return Err(truncated(path, "qcow2 header", &FIELDS, b.len()));
    }
    if b[..4] != MAGIC {
        return Err(invalid(path, "magic", "not QFI\\xfb"));
    }
    let version = be32(b, 4);
    let need = match version {
        2 => HEADER_LEN_V2,
        3 => HEADER_LEN_V3 as usize,
        _ => {
            return Err(invalid(
                path,
                "version",
                format!("{version} unsupported (2 or 3)"),
            ))
        }
    };
    if b.len() < need {
        return Err(truncated(path, "qcow2 header", &FIELDS, b.len()));
    }
    if be64(b, 8) != 0 {
        return Err(invalid(
            path,
            "backing_file_offset",
            "backing files are not supported",
        ));
    }
    let cluster_bits = be32(b, 20);
    if !(9..=21).contains(&cluster_bits) {
        return Err(invalid(
            path,
            "cluster_bits",
            format!("{cluster_bits} outside 9..=21"),
        ));
    }
    let cluster = 1u64 << cluster_bits;
    let size = be64(b, 24);
    let crypt = be32(b, 32);
    if crypt != 0 {
        return Err(invalid(
            path,
            "crypt_method",
            format!("{crypt}: encrypted images are not supported"),
        ));
    }
    let l1_size = u64::from(be32(b, 36));
    let l1_offset = be64(b, 40);
    if version == 3 {
        let incompat = be64(b, 72);
        // Bit 0 (dirty: refcounts may be stale) does not matter for reading.
        if incompat & !1 != 0 {
            return Err(invalid(
                path,
                "incompatible_features",
                format!("{incompat:#x}: corrupt, external data file, compression type or extended L2 are not supported"),
            ));
        }
        let hl = be32(b, 100);
        if hl < HEADER_LEN_V3 || u64::from(hl) > cluster {
            return Err(invalid(
                path,
                "header_length",
                format!("{hl} outside 104..={cluster}"),
            ));
        }
    }
    let l2_entries = cluster / 8;
    let span = l2_entries * cluster;
    let max_size = MAX_L1_BYTES / 8 * span;
    if size > max_size {
        return Err(invalid(
            path,
            "size",
            format!("{size} bytes exceeds the {max_size}-byte maximum of {cluster}-byte clusters (L1 table capped at 32 MiB)"),
        ));
    }
    let needed = size.div_ceil(span);
    if l1_size < needed {
        return Err(invalid(
            path,
            "l1_size",
            format!("{l1_size} entries cannot map a {size}-byte disk (needs {needed})"),
        ));
    }
    if l1_size * 8 > MAX_L1_BYTES {
        return Err(invalid(
            path,
            "l1_size",
            format!("{l1_size} entries exceeds the 32 MiB cap"),
        ));
    }
    if l1_offset % cluster != 0 || l1_offset > file_len {
        return Err(invalid(
            path,
            "l1_table_offset",
            format!("{l1_offset} (+{} bytes) is unaligned or past the end of the file ({file_len} bytes)", l1_size * 8),
        ));
    }
    if l1_offset + l1_size * 8 > file_len {
        return Err(invalid(
            path,
            "l1_size",
            format!(
                "{l1_size} entries ({} bytes) at {l1_offset} run past the end of the file ({file_len} bytes)",
                l1_size * 8
            ),
        ));
    }
    let refcounts = check_refcounts(b, version, cluster, file_len, path)?;
    let header = Meta::new("the header", 0, cluster);
    let l1 = Meta::new("the L1 table", l1_offset, l1_size * 8);
    for (field, table, others) in [
        ("l1_table_offset", l1, [header, refcounts]),
        ("refcount_table_offset", refcounts, [header, l1]),
    ] {
        if let Some(hit) = Meta::first_hit(&others, table.start, table.end - table.start) {
            return Err(invalid(
                path,
                field,
                format!(
                    "{} (+{} bytes) overlaps {hit}",
                    table.start,
                    table.end - table.start
                ),
            ));
        }
    }
    Ok(Header {
        version,
        cluster_bits,
        size,
        l1_size,
        l1_offset,
        tables: [header, l1, refcounts],
    })
}

/// The refcount table is never read here, but a header whose table
/// could not exist is a corrupt image: refuse it as qemu does (a table
/// of at most 8 MiB, entries of at most 64 bits) and also when the table
/// is unaligned or not inside the file.
fn check_refcounts(
    b: &[u8],
    version: u32,
    cluster: u64,
    file_len: u64,
    path: &Path,
) -> Result<Meta, ImageError> {
    let clusters = u64::from(be32(b, 56));
    let bytes = clusters * cluster;
    if bytes > MAX_REFTABLE_BYTES {
        return Err(invalid(
            path,
            "refcount_table_clusters",
            format!("{clusters} clusters of {cluster} bytes exceeds the 8 MiB cap"),
        ));
    }
    let offset = be64(b, 48);
    if offset % cluster != 0 || offset.checked_add(bytes).is_none_or(|e| e > file_len) {
        return Err(invalid(
            path,
            "refcount_table_offset",
            format!("{offset} (+{bytes} bytes) is unaligned or past the end of the file ({file_len} bytes)"),
        ));
    }
    if version == 3 {
        let order = be32(b, 96);
        if order > 6 {
            return Err(invalid(
                path,
                "refcount_order",
                format!("{order} outside 0..=6 (refcounts of 1 to 64 bits)"),
            ));
        }
    }
    Ok(Meta::new("the refcount table", offset, bytes))
}

struct Qcow2Map {
    h: Header,
    file_len: u64,
    path: PathBuf,
}

impl Qcow2Map {
    fn bad(&self, msg: String) -> io::Error {
        invalid_data(&self.path, format!("qcow2 {msg}"))
    }
}

impl BlockMap for Qcow2Map {
    fn lookup(&mut self, file: &mut dyn ReadSeek, off: u64) -> io::Result<Run> {
        let cluster = 1u64 << self.h.cluster_bits;
        let l2_entries = cluster / 8;
        let vcluster = off >> self.h.cluster_bits;
        let within = off & (cluster - 1);
        let l1_idx = vcluster / l2_entries;
        let l2_idx = vcluster % l2_entries;
        let to_cluster_end = cluster - within;
        if l1_idx >= self.h.l1_size {
            return Err(self.bad(format!("offset {off} is beyond the L1 table")));
        }
        let l1e = u64::from_be_bytes(read_entry::<8>(
            file,
            self.h.l1_offset + l1_idx * 8,
            self.file_len,
            &self.path,
            "qcow2 L1 table",
        )?);
        let l2_off = l1e & OFFSET_MASK;
        if l2_off == 0 {
            let rest = (l2_entries - l2_idx) * cluster - within;
            return Ok(Run::Zero { len: rest });
        }
        if l2_off % cluster != 0 {
            return Err(self.bad(format!(
                "L1 entry {l1_idx}: L2 table offset {l2_off} is not cluster aligned"
            )));
        }
        if l2_off + cluster > self.file_len {
            return Err(self.bad(format!(
                "L1 entry {l1_idx}: L2 table at {l2_off} is past the end of the file ({} bytes)",
                self.file_len
            )));
        }
        if let Some(hit) = Meta::first_hit(&self.h.tables, l2_off, cluster) {
            return Err(self.bad(format!(
                "L1 entry {l1_idx}: L2 table at {l2_off} overlaps {hit}"
            )));
        }
        let l2e = u64::from_be_bytes(read_entry::<8>(
            file,
            l2_off + l2_idx * 8,
            self.file_len,
            &self.path,
            "qcow2 L2 table",
        )?);
        if l2e & COMPRESSED != 0 {
            return Err(self.bad(format!(
                "L2 entry for cluster {vcluster}: compressed clusters are not supported"
            )));
        }
        let host = l2e & OFFSET_MASK;
        if host == 0 || (self.h.version == 3 && l2e & 1 != 0) {
            return Ok(Run::Zero {
                len: to_cluster_end,
            });
        }
        if host % cluster != 0 {
            return Err(self.bad(format!(
                "L2 entry for cluster {vcluster}: data offset {host} is not cluster aligned"
            )));
        }
        if host + within >= self.file_len {
            return Err(self.bad(format!(
                "L2 entry for cluster {vcluster}: data at {host} is past the end of the file ({} bytes)",
                self.file_len
            )));
        }
        let own = Meta::new("its own L2 table", l2_off, cluster);
        let [header, l1, refcounts] = self.h.tables;
        if let Some(hit) = Meta::first_hit(&[header, l1, refcounts, own], host, cluster) {
            return Err(self.bad(format!(
                "L2 entry for cluster {vcluster}: data at {host} overlaps {hit}"
            )));
        }
        Ok(Run::Data {
            host: host + within,
            len: to_cluster_end,
        })
    }
}

pub(crate) fn open<R: Read + Seek + 'static>(
    mut inner: R,
    len: u64,
    path: &Path,
) -> Result<DiskImage, ImageError> {
    let mut buf = [0u8; HEADER_LEN_V3 as usize];
    let n = read_at_most(&mut inner, 0, &mut buf).with_path("read the header of", path)?;
    let h = parse_header(&buf[..n], len, path)?;
    let size = h.size;
    let map = Qcow2Map {
        h,
        file_len: len,
        path: path.to_path_buf(),
    };
    Ok(DiskImage {
        format: ImageFormat::Qcow2,
        virtual_size: size,
        reader: Box::new(MappedReader::new(inner, map, size, len, path)),
    })
}
