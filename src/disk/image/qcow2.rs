//! qcow2 version 3 with 64 KiB clusters.
//!
//! Layout we write, in clusters of 64 KiB:
//!
//! | cluster            | content                                              |
//! |--------------------|------------------------------------------------------|
//! | 0                  | header (104 bytes; the rest, incl. the end-of-extensions marker, is zero) |
//! | 1 ..               | refcount table (one 8-byte entry per refcount block) |
//! | then               | refcount blocks (16-bit counts, 32768 per block)     |
//! | then               | L1 table (one 8-byte entry per 512 MiB of disk)      |
//! | then               | one L2 table per 512 MiB region that holds data      |
//! | then               | data clusters holding `head` (all-zero ones skipped) |
//!
//! Every cluster in the file is referenced exactly once, so each refcount is 1
//! and the "copied" flag (bit 63) is set on every L1/L2 entry, which is what
//! `qemu-img check` expects of an image without snapshots. The L1 table of a
//! 2 TiB disk is 32 KiB of zeros but for one entry, so it is mostly a hole.
//! The number of refcount blocks depends on the file size, which depends on
//! the number of refcount blocks; a short fixed-point loop settles it.

use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

use super::layout::{div_ceil, is_zero, round_up, Layout};
use super::mapped::{
    be32, be64, put_be16, put_be32, put_be64, read_at_most, read_entry, truncated, BlockMap, Field,
    MappedReader, Meta, Run,
};
use super::{DiskImage, ImageError, ImageFormat, ReadSeek};
use crate::errors::WithPath;

pub(crate) const MAGIC: [u8; 4] = *b"QFI\xfb";
const CLUSTER_BITS: u32 = 16;
const CLUSTER: u64 = 1 << CLUSTER_BITS;
/// 8-byte entries per L2 table.
const L2_ENTRIES: u64 = CLUSTER / 8;
/// refcount_order 4 = 16-bit refcounts.
const REFCOUNT_ORDER: u32 = 4;
const REFS_PER_BLOCK: u64 = CLUSTER * 8 / (1 << REFCOUNT_ORDER);
const HEADER_LEN_V3: u32 = 104;
/// qemu refuses L1 tables over 32 MiB; so do we, writing and reading.
const MAX_L1_BYTES: u64 = 32 << 20;
/// qemu refuses refcount tables over 8 MiB; so do we, reading.
const MAX_REFTABLE_BYTES: u64 = 8 << 20;
const COPIED: u64 = 1 << 63;
const COMPRESSED: u64 = 1 << 62;
/// Bits 9..=55 of an L1/L2 entry hold the host offset.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;

pub(crate) fn effective_size(size: u64) -> Result<u64, String> {
    let size = round_up(size, 512).ok_or_else(|| format!("{size} bytes is too large"))?;
    let max = MAX_L1_BYTES / 8 * L2_ENTRIES * CLUSTER;
    if size > max {
        return Err(format!(
            "{size} bytes exceeds the qcow2 limit of {max} bytes with 64 KiB clusters (L1 table capped at 32 MiB)"
        ));
    }
    Ok(size)
}

pub(crate) fn layout(size: u64, head: &[u8]) -> Result<Layout, String> {
    let l1_entries = div_ceil(size, L2_ENTRIES * CLUSTER);
    let l1_clusters = div_ceil(l1_entries * 8, CLUSTER);
    // Virtual clusters of `head` that hold something other than zeros.
    let data: Vec<(u64, &[u8])> = head
        .chunks(CLUSTER as usize)
        .enumerate()
        .filter(|(_, c)| !is_zero(c))
        .map(|(i, c)| (i as u64, c))
        .collect();
    let mut l2_indexes: Vec<u64> = data.iter().map(|(v, _)| v / L2_ENTRIES).collect();
    l2_indexes.dedup();
    let fixed = 1 + l1_clusters + l2_indexes.len() as u64 + data.len() as u64;
    let (mut rt, mut rb) = (1u64, 1u64);
    loop {
        let total = fixed + rt + rb;
        let nrb = div_ceil(total, REFS_PER_BLOCK);
        let nrt = div_ceil(nrb * 8, CLUSTER);
        if (nrt, nrb) == (rt, rb) {
            break;
        }
        (rt, rb) = (nrt, nrb);
    }
    let total = fixed + rt + rb;
    let rt_at = 1;
    let rb_at = rt_at + rt;
    let l1_at = rb_at + rb;
    let l2_at = l1_at + l1_clusters;
    let data_at = l2_at + l2_indexes.len() as u64;

    let mut l = Layout::new(total * CLUSTER);

    let mut h = vec![0u8; HEADER_LEN_V3 as usize];
    h[0..4].copy_from_slice(&MAGIC);
    put_be32(&mut h, 4, 3); // version
    put_be32(&mut h, 20, CLUSTER_BITS);
    put_be64(&mut h, 24, size);
    put_be32(&mut h, 36, l1_entries as u32);
    put_be64(&mut h, 40, l1_at * CLUSTER);
    put_be64(&mut h, 48, rt_at * CLUSTER);
    put_be32(&mut h, 56, rt as u32);
    put_be32(&mut h, 96, REFCOUNT_ORDER);
    put_be32(&mut h, 100, HEADER_LEN_V3);
    l.put(0, h);

    let mut table = vec![0u8; (rb * 8) as usize];
    for i in 0..rb {
        put_be64(&mut table, (i * 8) as usize, (rb_at + i) * CLUSTER);
    }
    l.put(rt_at * CLUSTER, table);
    let mut counts = vec![0u8; (total * 2) as usize];
    for i in 0..total {
        put_be16(&mut counts, (i * 2) as usize, 1);
    }
    l.put(rb_at * CLUSTER, counts);

    let mut l1 = vec![0u8; (l1_entries * 8) as usize];
    for (n, idx) in l2_indexes.iter().enumerate() {
        let l2_off = (l2_at + n as u64) * CLUSTER;
        put_be64(&mut l1, (idx * 8) as usize, l2_off | COPIED);
        let mut l2 = vec![0u8; CLUSTER as usize];
        for (k, (v, _)) in data.iter().enumerate() {
            if v / L2_ENTRIES == *idx {
                let host = (data_at + k as u64) * CLUSTER;
                put_be64(&mut l2, ((v % L2_ENTRIES) * 8) as usize, host | COPIED);
            }
        }
        l.put(l2_off, l2);
    }
    l.put(l1_at * CLUSTER, l1);
    for (k, (_, bytes)) in data.iter().enumerate() {
        l.put((data_at + k as u64) * CLUSTER, bytes.to_vec());
    }
    Ok(l)
}

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
    if l1_offset % cluster != 0
        || l1_offset
            .checked_add(l1_size * 8)
            .is_none_or(|e| e > file_len)
    {
        return Err(invalid(
            path,
            "l1_table_offset",
            format!("{l1_offset} (+{} bytes) is unaligned or past the end of the file ({file_len} bytes)", l1_size * 8),
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
        super::mapped::invalid_data(&self.path, format!("qcow2 {msg}"))
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

#[cfg(test)]
#[path = "qcow2_tests.rs"]
mod tests;
