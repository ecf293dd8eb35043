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
use super::{DiskImage, FormatLimit, ImageError, ImageFormat, ReadSeek};
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

pub(crate) fn effective_size(size: u64) -> Result<u64, FormatLimit> {
    let size = round_up(size, 512).ok_or(FormatLimit::TooLarge(size))?;
    let max = MAX_L1_BYTES / 8 * L2_ENTRIES * CLUSTER;
    if size > max {
        return Err(FormatLimit::Qcow2 { size, max });
    }
    Ok(size)
}

pub(crate) fn layout(size: u64, head: &[u8]) -> Result<Layout, FormatLimit> {
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

#[path = "qcow2_read.rs"]
mod read;

pub(crate) use read::open;
#[cfg(test)]
use read::*;

#[cfg(test)]
#[path = "qcow2_tests.rs"]
mod tests;
