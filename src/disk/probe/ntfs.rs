//! NTFS: the boot sector gives the serial number (shown as the UUID) and
//! where the MFT is; the label lives in the `$Volume` file, MFT record 3,
//! as a resident VOLUME_NAME attribute.

use super::found::Found;
use super::{le16, le32, le64, utf16le, Dev, FsKind, Region};
use std::io::{self, Read, Seek};

/// Largest MFT record this prober reads; real ones are 1 or 4 KiB.
const MAX_RECORD: usize = 4096;
/// Update-sequence fix-ups protect the last two bytes of every 512 bytes.
const FIXUP_STRIDE: usize = 512;
const VOLUME_RECORD: u64 = 3;
const ATTR_VOLUME_NAME: u32 = 0x60;
const ATTR_END: u32 = 0xFFFF_FFFF;

/// Detect NTFS at the start of `reg`.
pub(crate) fn detect<R: Read + Seek>(
    dev: &mut Dev<'_, R>,
    reg: Region,
) -> io::Result<Option<Found>> {
    let mut bs = [0u8; 512];
    if !reg.read(dev, 0, &mut bs)? || &bs[3..11] != b"NTFS    " {
        return Ok(None);
    }
    let bps = u64::from(le16(&bs, 11));
    let spc_raw = bs[13];
    // Values above 0x80 encode the sectors per cluster as a negative shift.
    let spc = if spc_raw <= 0x80 {
        u64::from(spc_raw)
    } else {
        1u64 << (256 - u32::from(spc_raw)).min(20)
    };
    if !bps.is_power_of_two() || !(256..=4096).contains(&bps) || spc == 0 {
        log::debug!("probe: NTFS OEM id but bytes/sector {bps}, sectors/cluster {spc}");
        return Ok(None);
    }
    let cluster = bps * spc;
    let rec_raw = bs[0x40] as i8;
    let record = if rec_raw > 0 {
        u64::from(rec_raw as u8) * cluster
    } else {
        1u64 << u32::from(rec_raw.unsigned_abs()).min(31)
    };
    let serial = le64(&bs, 0x48);
    let uuid = (serial != 0).then(|| format!("{serial:016X}"));
    let label = volume_label(dev, reg, le64(&bs, 0x30), cluster, record)?;
    Ok(Some(Found {
        kind: FsKind::Ntfs,
        label,
        uuid,
        version: None,
    }))
}

/// Read `$Volume` and return its VOLUME_NAME, if everything checks out.
fn volume_label<R: Read + Seek>(
    dev: &mut Dev<'_, R>,
    reg: Region,
    mft_lcn: u64,
    cluster: u64,
    record: u64,
) -> io::Result<Option<String>> {
    if !(512..=MAX_RECORD as u64).contains(&record) || record & (FIXUP_STRIDE as u64 - 1) != 0 {
        log::debug!("probe: NTFS MFT record size {record} not supported");
        return Ok(None);
    }
    let Some(off) = mft_lcn
        .checked_mul(cluster)
        .and_then(|o| o.checked_add(VOLUME_RECORD * record))
    else {
        return Ok(None);
    };
    let mut buf = [0u8; MAX_RECORD];
    let rec = &mut buf[..record as usize];
    if !reg.read(dev, off, rec)? || &rec[..4] != b"FILE" || !apply_fixups(rec) {
        log::debug!("probe: NTFS $Volume record unreadable");
        return Ok(None);
    }
    let mut at = usize::from(le16(rec, 0x14));
    while at + 24 <= rec.len() {
        let kind = le32(rec, at);
        let len = le32(rec, at + 4) as usize;
        if kind == ATTR_END || len < 24 || at + len > rec.len() {
            break;
        }
        if kind == ATTR_VOLUME_NAME && rec[at + 8] == 0 {
            let vlen = le32(rec, at + 0x10) as usize;
            let voff = usize::from(le16(rec, at + 0x14));
            let end = voff.checked_add(vlen).filter(|&e| e <= len);
            return Ok(end
                .and_then(|e| rec.get(at + voff..at + e))
                .and_then(utf16le));
        }
        at += len;
    }
    Ok(None)
}

/// Undo the update-sequence protection of a multi-sector record in place.
/// False when the record's sequence numbers do not match (torn write or junk).
fn apply_fixups(rec: &mut [u8]) -> bool {
    let usa = usize::from(le16(rec, 4));
    let count = usize::from(le16(rec, 6));
    if count == 0 || count - 1 > rec.len() / FIXUP_STRIDE || usa + 2 * count > rec.len() {
        return false;
    }
    let usn = [rec[usa], rec[usa + 1]];
    for i in 1..count {
        let end = i * FIXUP_STRIDE;
        if rec[end - 2..end] != usn {
            return false;
        }
        let fix = [rec[usa + 2 * i], rec[usa + 2 * i + 1]];
        rec[end - 2..end].copy_from_slice(&fix);
    }
    true
}
