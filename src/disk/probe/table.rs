//! MBR and GPT partition tables.
//!
//! A GPT is believed only behind a protective MBR (an entry of type 0xEE)
//! and only when its header CRC, its own-LBA field and its entry-array CRC
//! all check out. The primary header at LBA 1 is tried first, then the
//! backup at the last LBA, with 512-byte and then 4096-byte sectors. When
//! no GPT is valid, the MBR's four primary entries are reported.

use super::{guid_le, le32, le64, utf16le, Dev, Partition, TableKind};
use std::io::{self, Read, Seek};

const SECTOR: u64 = 512;
const MBR_TYPE_GPT: u8 = 0xEE;
/// Upper bound on the entry array we are willing to read and checksum.
/// The usual array is 16 KiB (128 entries of 128 bytes).
const MAX_ENTRY_ARRAY: u64 = 1 << 20;
const MAX_ENTRY_SIZE: u32 = 4096;

/// One primary MBR slot.
#[derive(Debug, Clone, Copy)]
struct MbrEntry {
    kind: u8,
    start_lba: u32,
    sectors: u32,
}

/// Read the partition table, if there is one.
pub(crate) fn read<R: Read + Seek>(
    dev: &mut Dev<'_, R>,
) -> io::Result<Option<(TableKind, Vec<Partition>)>> {
    let Some(mbr) = read_mbr(dev)? else {
        return Ok(None);
    };
    if mbr.iter().flatten().any(|e| e.kind == MBR_TYPE_GPT) {
        for sector in [512u64, 4096] {
            if let Some(parts) = read_gpt(dev, sector)? {
                return Ok(Some((TableKind::Gpt, parts)));
            }
        }
        log::debug!("probe: protective MBR but no valid GPT header; reporting the MBR");
    }
    let parts = mbr
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let e = (*e)?;
            Some(Partition {
                number: i as u32 + 1,
                start: u64::from(e.start_lba) * SECTOR,
                size: u64::from(e.sectors) * SECTOR,
                type_id: format!("0x{:02x}", e.kind),
                name: None,
            })
        })
        .collect();
    Ok(Some((TableKind::Mbr, parts)))
}

/// The four primary slots of a valid MBR (`None` for an empty slot), or
/// `None` when sector 0 holds no MBR: no 0x55AA, a boot flag other than
/// 0x00/0x80, a used slot starting at sector 0, or no used slot at all.
fn read_mbr<R: Read + Seek>(dev: &mut Dev<'_, R>) -> io::Result<Option<[Option<MbrEntry>; 4]>> {
    let mut s = [0u8; 512];
    if !dev.read_at(0, &mut s)? || s[510..512] != [0x55, 0xAA] {
        return Ok(None);
    }
    let mut out = [None; 4];
    for (i, slot) in out.iter_mut().enumerate() {
        let e = &s[446 + 16 * i..446 + 16 * (i + 1)];
        if e[0] != 0 && e[0] != 0x80 {
            log::debug!(
                "probe: 0x55AA but MBR slot {} has boot flag {:#x}",
                i + 1,
                e[0]
            );
            return Ok(None);
        }
        let entry = MbrEntry {
            kind: e[4],
            start_lba: le32(e, 8),
            sectors: le32(e, 12),
        };
        if entry.kind == 0 || entry.sectors == 0 {
            continue;
        }
        if entry.start_lba == 0 && entry.kind != MBR_TYPE_GPT {
            // ISO hybrids do put a partition at sector 0; accept those only
            // with the bootable flag, which is what isohybrid writes.
            if e[0] != 0x80 {
                log::debug!("probe: MBR slot {} starts at sector 0", i + 1);
                return Ok(None);
            }
        }
        *slot = Some(entry);
    }
    if out.iter().all(Option::is_none) {
        log::debug!("probe: 0x55AA but every MBR slot is empty");
        return Ok(None);
    }
    Ok(Some(out))
}

/// The partitions of the first valid GPT header (primary, then backup) for
/// logical sectors of `sector` bytes.
fn read_gpt<R: Read + Seek>(
    dev: &mut Dev<'_, R>,
    sector: u64,
) -> io::Result<Option<Vec<Partition>>> {
    let lbas = dev.size / sector;
    if lbas < 3 {
        return Ok(None);
    }
    for lba in [1, lbas - 1] {
        if let Some(parts) = gpt_at(dev, sector, lba, lbas)? {
            return Ok(Some(parts));
        }
    }
    Ok(None)
}

/// Parse and verify a GPT header at `lba` and its entry array.
fn gpt_at<R: Read + Seek>(
    dev: &mut Dev<'_, R>,
    sector: u64,
    lba: u64,
    lbas: u64,
) -> io::Result<Option<Vec<Partition>>> {
    let mut hdr = [0u8; 512];
    if !dev.read_at(lba * sector, &mut hdr)? || &hdr[..8] != b"EFI PART" {
        return Ok(None);
    }
    let hsize = le32(&hdr, 12) as usize;
    if !(92..=512).contains(&hsize) {
        log::debug!("probe: GPT header at LBA {lba} claims size {hsize}");
        return Ok(None);
    }
    let want = le32(&hdr, 16);
    let mut h = crc32fast::Hasher::new();
    h.update(&hdr[..16]);
    h.update(&[0; 4]);
    h.update(&hdr[20..hsize]);
    if h.finalize() != want {
        log::debug!("probe: GPT header at LBA {lba} ({sector}-byte sectors) fails its CRC");
        return Ok(None);
    }
    if le64(&hdr, 24) != lba {
        log::debug!(
            "probe: GPT header at LBA {lba} says it is at {}",
            le64(&hdr, 24)
        );
        return Ok(None);
    }
    let entries_lba = le64(&hdr, 72);
    let count = le32(&hdr, 80);
    let esize = le32(&hdr, 84);
    let array_bytes = u64::from(count) * u64::from(esize);
    if !(128..=MAX_ENTRY_SIZE).contains(&esize) || esize & 7 != 0 || array_bytes > MAX_ENTRY_ARRAY {
        log::debug!("probe: GPT entry array {count} x {esize} out of bounds");
        return Ok(None);
    }
    if entries_lba >= lbas {
        log::debug!("probe: GPT entry array at LBA {entries_lba} is past the end");
        return Ok(None);
    }
    let first_usable = le64(&hdr, 40);
    let last_usable = le64(&hdr, 48);

    // Stream the array once: checksum every byte, keep the used entries.
    let base = entries_lba * sector;
    let mut crc = crc32fast::Hasher::new();
    let mut parts = Vec::new();
    let mut entry = [0u8; MAX_ENTRY_SIZE as usize];
    for i in 0..count {
        let e = &mut entry[..esize as usize];
        if !dev.read_at(base + u64::from(i) * u64::from(esize), e)? {
            log::debug!("probe: GPT entry array runs past the end");
            return Ok(None);
        }
        crc.update(e);
        if let Some(p) = gpt_entry(e, i + 1, sector, first_usable, last_usable) {
            parts.push(p);
        }
    }
    if crc.finalize() != le32(&hdr, 88) {
        log::debug!("probe: GPT entry array at LBA {entries_lba} fails its CRC");
        return Ok(None);
    }
    Ok(Some(parts))
}

/// One used GPT entry as a partition; unused or impossible entries are skipped.
fn gpt_entry(e: &[u8], number: u32, sector: u64, first: u64, last: u64) -> Option<Partition> {
    let mut type_guid = [0u8; 16];
    type_guid.copy_from_slice(&e[..16]);
    if type_guid == [0; 16] {
        return None;
    }
    let (start, end) = (le64(e, 32), le64(e, 40));
    if start > end || start < first || end > last {
        log::debug!(
            "probe: GPT entry {number} spans LBA {start}..={end}, outside {first}..={last}"
        );
        return None;
    }
    Some(Partition {
        number,
        start: start.checked_mul(sector)?,
        size: (end - start + 1).checked_mul(sector)?,
        type_id: guid_le(&type_guid),
        name: utf16le(&e[56..128]),
    })
}
