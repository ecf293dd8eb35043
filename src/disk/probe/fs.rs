//! Filesystem, swap and LUKS signatures at the start of a region, and
//! [`detect`], which also asks `ntfs` and `volumes`.
//!
//! Each detector reads one fixed-size block at a known offset, checks the
//! magic and enough of the surrounding fields to rule out chance matches, and
//! pulls out the label and UUID. Offsets come from the on-disk formats.

use super::found::Found;
use super::{be16, be32, le16, le32, ntfs, text, uuid_be, volumes, Dev, FsKind, Region};
use blkid_rs::{Luks2Header, LuksHeader, LuksVersionedHeader};
use std::io::{self, Cursor, Read, Seek};

type Detector<R> = fn(&mut Dev<'_, R>, Region) -> io::Result<Option<Found>>;

/// Every signature present in `reg` (at its start, or where a volume
/// manager's metadata sits). Usually zero or one; more than one means
/// leftovers of an earlier format, and all are reported so a caller never
/// mistakes such a disk for an empty one.
pub(crate) fn detect<R: Read + Seek>(dev: &mut Dev<'_, R>, reg: Region) -> io::Result<Vec<Found>> {
    let detectors: [Detector<R>; 14] = [
        luks,
        ext,
        xfs,
        btrfs,
        swap,
        ntfs::detect,
        vfat,
        iso9660,
        volumes::lvm2,
        volumes::md,
        volumes::bcache,
        volumes::zfs,
        volumes::bluestore,
        volumes::vmfs,
    ];
    let mut out = Vec::new();
    for d in detectors {
        if let Some(f) = d(dev, reg)? {
            out.push(f);
        }
    }
    Ok(out)
}

/// Copy a fixed range out of a block read into an array.
fn arr<const N: usize>(b: &[u8], o: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = b.get(o..o + N) {
        a.copy_from_slice(s);
    }
    a
}

const EXT_SB: u64 = 1024;
const EXT_COMPAT_JOURNAL: u32 = 0x4;
const EXT_INCOMPAT_JOURNAL_DEV: u32 = 0x8;
/// Incompatible features an ext3 driver understands (filetype, recover, meta_bg).
const EXT3_INCOMPAT: u32 = 0x2 | 0x4 | 0x10;
/// Read-only-compatible features ext2/ext3 understand (sparse_super, large_file, btree_dir).
const EXT3_RO_COMPAT: u32 = 0x1 | 0x2 | 0x4;

/// ext2/3/4: superblock at 1 KiB, magic 0xEF53. The generation is decided
/// from the features: anything ext3 does not know makes it ext4; otherwise a
/// journal makes it ext3.
fn ext<R: Read + Seek>(dev: &mut Dev<'_, R>, reg: Region) -> io::Result<Option<Found>> {
    let mut sb = [0u8; 256];
    if !reg.read(dev, EXT_SB, &mut sb)? || le16(&sb, 0x38) != 0xEF53 {
        return Ok(None);
    }
    let log_block = le32(&sb, 0x18);
    if log_block > 6 {
        log::debug!("probe: ext magic but block size 2^(10+{log_block}) is impossible");
        return Ok(None);
    }
    let compat = le32(&sb, 0x5C);
    let incompat = le32(&sb, 0x60);
    let ro_compat = le32(&sb, 0x64);
    if incompat & EXT_INCOMPAT_JOURNAL_DEV != 0 {
        log::debug!("probe: ext external journal device, not a filesystem");
        return Ok(None);
    }
    let kind = if incompat & !EXT3_INCOMPAT != 0 || ro_compat & !EXT3_RO_COMPAT != 0 {
        FsKind::Ext4
    } else if compat & EXT_COMPAT_JOURNAL != 0 {
        FsKind::Ext3
    } else {
        FsKind::Ext2
    };
    Ok(Some(Found {
        kind,
        label: text(&sb[0x78..0x88]),
        uuid: uuid_be(&arr(&sb, 0x68)),
        version: None,
    }))
}

/// Linux swap: the signature sits in the last 10 bytes of the first page,
/// and the page size is the one of the machine that ran mkswap.
fn swap<R: Read + Seek>(dev: &mut Dev<'_, R>, reg: Region) -> io::Result<Option<Found>> {
    for page in [4096u64, 8192, 16384, 65536] {
        let mut magic = [0u8; 10];
        if !reg.read(dev, page - 10, &mut magic)? {
            continue;
        }
        match &magic {
            b"SWAPSPACE2" => {
                // Version-1 header: version, last page, bad pages, uuid, label.
                let mut h = [0u8; 44];
                if !reg.read(dev, 1024, &mut h)? {
                    return Ok(None);
                }
                let v = le32(&h, 0);
                if v != 1 && v.swap_bytes() != 1 {
                    log::debug!("probe: swap signature with version {v}");
                    return Ok(Some(Found {
                        kind: FsKind::Swap,
                        label: None,
                        uuid: None,
                        version: None,
                    }));
                }
                return Ok(Some(Found {
                    kind: FsKind::Swap,
                    label: text(&h[28..44]),
                    uuid: uuid_be(&arr(&h, 12)),
                    version: None,
                }));
            }
            b"SWAP-SPACE" => {
                return Ok(Some(Found {
                    kind: FsKind::Swap,
                    label: None,
                    uuid: None,
                    version: None,
                }));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// LUKS1 and LUKS2, read by the `blkid-rs` crate from a bounded copy of the
/// header so that its errors can only mean "malformed", never I/O.
fn luks<R: Read + Seek>(dev: &mut Dev<'_, R>, reg: Region) -> io::Result<Option<Found>> {
    let mut h = [0u8; 512];
    if !reg.read(dev, 0, &mut h)? || &h[..6] != b"LUKS\xba\xbe" {
        return Ok(None);
    }
    let header = match LuksHeader::read(Cursor::new(&h[..])) {
        Ok(hdr) => hdr,
        Err(e) => {
            log::debug!("probe: LUKS magic but header rejected: {e}");
            return Ok(None);
        }
    };
    let uuid = match header.uuid() {
        Ok(u) => Some(u.hyphenated().to_string()),
        Err(e) => {
            log::debug!("probe: LUKS UUID unreadable: {e}");
            None
        }
    };
    let label = match &header {
        LuksHeader::Luks1(_) => None,
        LuksHeader::Luks2(v2) => v2.label().ok().flatten().map(str::to_string),
    };
    Ok(Some(Found {
        kind: FsKind::Luks,
        label,
        uuid,
        version: None,
    }))
}

/// XFS: big-endian superblock at 0 with magic "XFSB"; block and sector
/// sizes must be sane powers of two.
fn xfs<R: Read + Seek>(dev: &mut Dev<'_, R>, reg: Region) -> io::Result<Option<Found>> {
    let mut sb = [0u8; 128];
    if !reg.read(dev, 0, &mut sb)? || &sb[..4] != b"XFSB" {
        return Ok(None);
    }
    let block = be32(&sb, 4);
    let sect = u32::from(be16(&sb, 102));
    let sane = |v: u32, lo: u32, hi: u32| v.is_power_of_two() && (lo..=hi).contains(&v);
    if !sane(block, 512, 65536) || !sane(sect, 512, 32768) {
        log::debug!("probe: XFSB with block {block} sector {sect}");
        return Ok(None);
    }
    Ok(Some(Found {
        kind: FsKind::Xfs,
        label: text(&sb[108..120]),
        uuid: uuid_be(&arr(&sb, 32)),
        version: None,
    }))
}

const BTRFS_SB: u64 = 64 * 1024;

/// btrfs: primary superblock at 64 KiB, magic at +64, fsid at +32, label at +299.
fn btrfs<R: Read + Seek>(dev: &mut Dev<'_, R>, reg: Region) -> io::Result<Option<Found>> {
    let mut sb = [0u8; 555];
    if !reg.read(dev, BTRFS_SB, &mut sb)? || &sb[64..72] != b"_BHRfS_M" {
        return Ok(None);
    }
    Ok(Some(Found {
        kind: FsKind::Btrfs,
        label: text(&sb[299..555]),
        uuid: uuid_be(&arr(&sb, 32)),
        version: None,
    }))
}

/// FAT12/16/32: a BIOS parameter block with sane geometry and the "FAT"
/// type string where FAT12/16 or FAT32 put it. The label and serial come
/// from the extended boot record (boot signature 0x28 or 0x29).
fn vfat<R: Read + Seek>(dev: &mut Dev<'_, R>, reg: Region) -> io::Result<Option<Found>> {
    let mut bs = [0u8; 512];
    if !reg.read(dev, 0, &mut bs)? {
        return Ok(None);
    }
    if !(bs[0] == 0xEB || bs[0] == 0xE9) || &bs[3..7] == b"NTFS" {
        return Ok(None);
    }
    let bps = le16(&bs, 11);
    let spc = bs[13];
    let reserved = le16(&bs, 14);
    let fats = bs[16];
    let media = bs[21];
    let geometry_ok = matches!(bps, 512 | 1024 | 2048 | 4096)
        && spc.is_power_of_two()
        && reserved > 0
        && (1..=4).contains(&fats)
        && (media == 0xF0 || media >= 0xF8);
    if !geometry_ok {
        return Ok(None);
    }
    let fat16_len = le16(&bs, 22);
    let fat32_len = le32(&bs, 36);
    // The extended boot record sits at 36 on FAT12/16 and at 64 on FAT32.
    let ebr = if fat16_len == 0 && fat32_len != 0 {
        64
    } else {
        36
    };
    if !bs[ebr + 18..ebr + 26].starts_with(b"FAT") {
        log::debug!("probe: BPB looks like FAT but no FAT type string");
        return Ok(None);
    }
    let (label, uuid) = if matches!(bs[ebr + 2], 0x28 | 0x29) {
        let serial = le32(&bs, ebr + 3);
        let label = text(&bs[ebr + 7..ebr + 18]).filter(|l| l != "NO NAME");
        (
            label,
            Some(format!("{:04X}-{:04X}", serial >> 16, serial & 0xFFFF)),
        )
    } else {
        (None, None)
    };
    Ok(Some(Found {
        kind: FsKind::Vfat,
        label,
        uuid,
        version: None,
    }))
}

const ISO_PVD: u64 = 16 * 2048;

/// ISO 9660: the primary volume descriptor in sector 16 ("\x01CD001").
/// Label is the volume identifier; UUID is built from the volume
/// creation time the way blkid shows it (YYYY-MM-DD-HH-MM-SS-cc).
pub(super) fn iso9660<R: Read + Seek>(
    dev: &mut Dev<'_, R>,
    reg: Region,
) -> io::Result<Option<Found>> {
    let mut pvd = [0u8; 2048];
    if !reg.read(dev, ISO_PVD, &mut pvd)? || &pvd[1..6] != b"CD001" || pvd[0] != 1 {
        return Ok(None);
    }
    let uuid = iso_time(&pvd[830..847]).or_else(|| iso_time(&pvd[813..830]));
    Ok(Some(Found {
        kind: FsKind::Iso9660,
        label: text(&pvd[40..72]),
        uuid,
        version: None,
    }))
}

/// A 17-byte ISO 9660 date ("YYYYMMDDHHMMSScc" + zone) as blkid's UUID.
fn iso_time(t: &[u8]) -> Option<String> {
    let d = t.get(..16)?;
    if !d.iter().all(u8::is_ascii_digit) || d.iter().all(|&c| c == b'0') {
        return None;
    }
    let s = |a: usize, b: usize| String::from_utf8_lossy(&d[a..b]).into_owned();
    Some(format!(
        "{}-{}-{}-{}-{}-{}-{}",
        s(0, 4),
        s(4, 6),
        s(6, 8),
        s(8, 10),
        s(10, 12),
        s(12, 14),
        s(14, 16)
    ))
}
