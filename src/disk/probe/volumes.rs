//! Members of volume managers and storage stacks: LVM2 physical volumes,
//! md RAID members (superblocks 0.90, 1.0, 1.1 and 1.2), bcache devices,
//! ZFS vdevs, Ceph BlueStore devices and VMFS datastores.
//!
//! None of them is a filesystem one could mount, but each holds someone's
//! data in a layout only its own tools understand, often with nothing at
//! byte 0 (an LVM label sits in sector 1, md 1.2 at 4 KiB, md 0.90 and 1.0
//! near the end of the device). Finding them is what keeps a disk that was
//! reused for one of them from being taken for b2d's own or for a blank one.
//!
//! A damaged checksum does not hide a signature: a magic at its exact place
//! plus the fields that say where the structure sits are no chance match,
//! and a member whose metadata is damaged still holds data.

use super::found::Found;
use super::{be64, le32, le64, text, uuid_be, Dev, FsKind, Region};
use std::io::{self, Read, Seek};

const SECTOR: u64 = 512;

/// LVM2: a label header in one of the first four sectors: "LABELONE", the
/// sector it sits in, a CRC, the offset of the PV header, "LVM2 001". The
/// PV header starts with the 32-character PV UUID.
pub(crate) fn lvm2<R: Read + Seek>(dev: &mut Dev<'_, R>, reg: Region) -> io::Result<Option<Found>> {
    for sector in 0..4u64 {
        let mut s = [0u8; 512];
        if !reg.read(dev, sector * SECTOR, &mut s)? {
            return Ok(None);
        }
        if &s[..8] != b"LABELONE" || &s[24..32] != b"LVM2 001" {
            continue;
        }
        if le64(&s, 8) != sector {
            log::debug!("probe: LVM2 label in sector {sector} says it is in another");
            continue;
        }
        let pv_header = le32(&s, 20) as usize;
        let uuid = pv_header
            .checked_add(32)
            .and_then(|end| s.get(pv_header..end))
            .and_then(pv_uuid);
        return Ok(Some(Found {
            kind: FsKind::Lvm2,
            label: None,
            uuid,
            version: Some("LVM2 001".into()),
        }));
    }
    Ok(None)
}

/// A PV UUID as LVM and blkid print it: 6-4-4-4-4-4-6 characters.
fn pv_uuid(id: &[u8]) -> Option<String> {
    // LVM draws UUID characters from [0-9a-zA-Z!#].
    if !id.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    let mut out = String::with_capacity(38);
    let mut at = 0;
    for n in [6, 4, 4, 4, 4, 4, 6] {
        if at > 0 {
            out.push('-');
        }
        out.push_str(&String::from_utf8_lossy(&id[at..at + n]));
        at += n;
    }
    Some(out)
}

/// The md superblock magic (little-endian on disk; 0.90 is written in the
/// host's byte order, so big-endian too).
const MD_MAGIC: u32 = 0xa92b_4efc;
/// md 0.90 reserves the last 64 KiB-aligned 64 KiB of the member.
const MD0_RESERVED: u64 = 64 * 1024;

/// md RAID: version 1.1 at byte 0, 1.2 at 4 KiB, 1.0 8 to 12 KiB from the
/// end (4 KiB-aligned), each recording the sector it sits in; 0.90 in the
/// last 64 KiB-aligned 64 KiB. The version found is the one reported.
pub(crate) fn md<R: Read + Seek>(dev: &mut Dev<'_, R>, reg: Region) -> io::Result<Option<Found>> {
    let sectors = reg.len / SECTOR;
    let mut v1 = vec![(0u64, "1.1"), (8, "1.2")];
    if let Some(end) = sectors.checked_sub(16) {
        v1.push((end & !7, "1.0"));
    }
    for (sector, version) in v1 {
        let mut sb = [0u8; 256];
        if !reg.read(dev, sector * SECTOR, &mut sb)? {
            continue;
        }
        if le32(&sb, 0) != MD_MAGIC || le32(&sb, 4) != 1 {
            continue;
        }
        if le64(&sb, 144) != sector {
            log::debug!(
                "probe: md 1.x magic in sector {sector}, but it says it is in sector {}",
                le64(&sb, 144)
            );
            continue;
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&sb[16..32]);
        return Ok(Some(Found {
            kind: FsKind::Md,
            label: text(&sb[32..64]),
            uuid: uuid_be(&uuid),
            version: Some(version.into()),
        }));
    }
    let Some(at) = (reg.len & !(MD0_RESERVED - 1)).checked_sub(MD0_RESERVED) else {
        return Ok(None);
    };
    let mut sb = [0u8; 64];
    if !reg.read(dev, at, &mut sb)? {
        return Ok(None);
    }
    let word: fn(&[u8], usize) -> u32 = if le32(&sb, 0) == MD_MAGIC {
        le32
    } else if le32(&sb, 0) == MD_MAGIC.swap_bytes() {
        super::be32
    } else {
        return Ok(None);
    };
    if word(&sb, 4) != 0 {
        log::debug!("probe: md 0.90 magic with major version {}", word(&sb, 4));
        return Ok(None);
    }
    // The set UUID is four numbers, words 5 and 13 to 15, printed in hex
    // (by mdadm and blkid alike) whatever the byte order they are stored in.
    let mut uuid = [0u8; 16];
    for (i, w) in [5, 13, 14, 15].into_iter().enumerate() {
        uuid[4 * i..4 * i + 4].copy_from_slice(&word(&sb, 4 * w).to_be_bytes());
    }
    Ok(Some(Found {
        kind: FsKind::Md,
        label: None,
        uuid: uuid_be(&uuid),
        version: Some(format!("0.{}", word(&sb, 8))),
    }))
}

const BCACHE_MAGIC: [u8; 16] = [
    0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81,
];

/// bcache: the superblock in sector 8 records that sector, then carries
/// the magic at +24, the device UUID at +40 and the label at +72.
pub(crate) fn bcache<R: Read + Seek>(
    dev: &mut Dev<'_, R>,
    reg: Region,
) -> io::Result<Option<Found>> {
    let mut sb = [0u8; 104];
    if !reg.read(dev, 8 * SECTOR, &mut sb)? || sb[24..40] != BCACHE_MAGIC[..] || le64(&sb, 8) != 8 {
        return Ok(None);
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&sb[40..56]);
    Ok(Some(Found {
        kind: FsKind::Bcache,
        label: text(&sb[72..104]),
        uuid: uuid_be(&uuid),
        version: None,
    }))
}

const ZFS_LABEL: u64 = 256 * 1024;
/// The uberblock ring: the second half of each 256 KiB label.
const ZFS_RING: u64 = 128 * 1024;
/// The smallest uberblock slot; larger sectors use whole multiples of it.
const ZFS_SLOT: usize = 1024;
const ZFS_UB_MAGIC: u64 = 0x00ba_b10c;
/// Pool versions run 1..=28, then 5000 for feature flags.
const ZFS_MAX_VERSION: u64 = 5000;

/// ZFS: vdev labels 0 and 1 (the first 512 KiB; labels 2 and 3 are at the
/// end) each end in a ring of uberblocks, magic 0x00bab10c in the byte
/// order of the host that wrote them, followed by a pool version.
pub(crate) fn zfs<R: Read + Seek>(dev: &mut Dev<'_, R>, reg: Region) -> io::Result<Option<Found>> {
    let mut ring = vec![0u8; ZFS_RING as usize];
    for label in 0..2 {
        if !reg.read(dev, label * ZFS_LABEL + ZFS_RING, &mut ring)? {
            return Ok(None);
        }
        for slot in ring.chunks_exact(ZFS_SLOT) {
            let version = if slot[..8] == ZFS_UB_MAGIC.to_le_bytes() {
                le64(slot, 8)
            } else if slot[..8] == ZFS_UB_MAGIC.to_be_bytes() {
                be64(slot, 8)
            } else {
                continue;
            };
            if (1..=ZFS_MAX_VERSION).contains(&version) {
                return Ok(Some(Found {
                    kind: FsKind::Zfs,
                    label: None,
                    uuid: None,
                    version: Some(version.to_string()),
                }));
            }
        }
    }
    Ok(None)
}

/// Ceph BlueStore: "bluestore block device\n" at byte 0, then the OSD's
/// UUID as text.
pub(crate) fn bluestore<R: Read + Seek>(
    dev: &mut Dev<'_, R>,
    reg: Region,
) -> io::Result<Option<Found>> {
    const MAGIC: &[u8] = b"bluestore block device\n";
    let mut h = [0u8; 60];
    if !reg.read(dev, 0, &mut h)? || !h.starts_with(MAGIC) {
        return Ok(None);
    }
    let id = &h[MAGIC.len()..MAGIC.len() + 36];
    let dashes_ok = id
        .iter()
        .enumerate()
        .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (*c == b'-'));
    let uuid = (dashes_ok && id.iter().all(|c| *c == b'-' || c.is_ascii_hexdigit()))
        .then(|| String::from_utf8_lossy(id).to_lowercase());
    Ok(Some(Found {
        kind: FsKind::Bluestore,
        label: None,
        uuid,
        version: None,
    }))
}

/// VMFS: the volume (logical volume manager) header at 1 MiB, magic
/// 0xc001d00d, or the filesystem's at 2 MiB, magic 0x2fabf15e.
pub(crate) fn vmfs<R: Read + Seek>(dev: &mut Dev<'_, R>, reg: Region) -> io::Result<Option<Found>> {
    for (at, magic) in [(1u64 << 20, 0xc001_d00du32), (2 << 20, 0x2fab_f15e)] {
        let mut m = [0u8; 4];
        if reg.read(dev, at, &mut m)? && le32(&m, 0) == magic {
            return Ok(Some(Found {
                kind: FsKind::Vmfs,
                label: None,
                uuid: None,
                version: None,
            }));
        }
    }
    Ok(None)
}
