//! Partition-table and filesystem signature probing over `Read + Seek`.
//!
//! [`probe`] looks at a block device, an image file or a virtual-disk reader
//! and says what is on it: an MBR or GPT partition table with its partitions,
//! and the filesystem (or swap / LUKS) signatures found at byte 0 of the
//! device and at the start of every partition, together with the metadata
//! of volume managers and RAID (LVM2, md, bcache, ZFS, Ceph, VMFS) that
//! the device or a partition belongs to.
//!
//! Everything read here may be hostile. Every offset is checked against the
//! device size before it is read, every read has a fixed upper bound, no
//! buffer is sized from an unchecked on-disk field, and a malformed structure
//! is reported as "not there" (the reason goes to `log::debug!`). Only real
//! I/O errors come back as `Err`.
//!
//! Inside: `table` reads MBR and GPT (primary, then backup; 512 and
//! 4096-byte sectors); `fs` and `ntfs` recognise ext2/3/4, swap, LUKS1/2,
//! xfs, btrfs, vfat, ntfs and iso9660; `volumes` the members of LVM2, md
//! RAID, bcache, ZFS, Ceph BlueStore and VMFS.

mod found;
mod fs;
mod ntfs;
mod table;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fs;
#[cfg(test)]
mod tests_volumes;
mod volumes;

use serde::Serialize;
use std::io::{self, Read, Seek, SeekFrom};

/// Which kind of partition table was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Mbr,
    Gpt,
}

/// `DOS` / `GPT`, as people name them.
impl std::fmt::Display for TableKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TableKind::Mbr => "DOS",
            TableKind::Gpt => "GPT",
        })
    }
}

/// One partition of the table, numbered as the kernel numbers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// 1-based partition number as the kernel names it (sda1 = 1).
    pub number: u32,
    /// Byte offset of the first sector.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// GPT type GUID (lower-case, dashed) or MBR type byte as `0x83`.
    pub type_id: String,
    /// GPT partition name, if any.
    pub name: Option<String>,
}

/// The signatures the prober knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    Ext2,
    Ext3,
    Ext4,
    Swap,
    Luks,
    Xfs,
    Btrfs,
    Vfat,
    Ntfs,
    Iso9660,
    /// An LVM2 physical volume.
    Lvm2,
    /// A member of an md (Linux software RAID) array.
    Md,
    /// A bcache backing or cache device.
    Bcache,
    /// A ZFS vdev.
    Zfs,
    /// A Ceph BlueStore OSD device.
    Bluestore,
    /// A VMFS datastore (or a member of its volume).
    Vmfs,
}

/// The short lower-case name (`ext4`, `swap`, `iso9660`, `lvm2`, `md`), as
/// mkfs and `b2d disk inspect --json` name them.
impl std::fmt::Display for FsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FsKind::Ext2 => "ext2",
            FsKind::Ext3 => "ext3",
            FsKind::Ext4 => "ext4",
            FsKind::Swap => "swap",
            FsKind::Luks => "luks",
            FsKind::Xfs => "xfs",
            FsKind::Btrfs => "btrfs",
            FsKind::Vfat => "vfat",
            FsKind::Ntfs => "ntfs",
            FsKind::Iso9660 => "iso9660",
            FsKind::Lvm2 => "lvm2",
            FsKind::Md => "md",
            FsKind::Bcache => "bcache",
            FsKind::Zfs => "zfs",
            FsKind::Bluestore => "bluestore",
            FsKind::Vmfs => "vmfs",
        })
    }
}

/// A filesystem (or swap / LUKS) signature found on the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filesystem {
    /// Byte offset of the filesystem on the probed device.
    pub offset: u64,
    /// Partition number it lives in, `None` for the whole device.
    pub partition: Option<u32>,
    pub kind: FsKind,
    pub label: Option<String>,
    /// Formatted the way `blkid` prints it for this kind.
    pub uuid: Option<String>,
    /// The format's version where it tells more than the kind, as blkid's
    /// VERSION: the md superblock (`0.90`, `1.0`, `1.1`, `1.2`), the LVM2
    /// label type (`LVM2 001`), the ZFS pool version.
    pub version: Option<String>,
}

impl Filesystem {
    /// What it is, for people: `ext4 signature`, `LVM2 physical volume`,
    /// `md RAID member (superblock 1.2)`.
    pub fn what(&self) -> String {
        let name = match self.kind {
            FsKind::Lvm2 => "LVM2 physical volume",
            FsKind::Md => {
                return match &self.version {
                    Some(v) => format!("md RAID member (superblock {v})"),
                    None => "md RAID member".into(),
                }
            }
            FsKind::Bcache => "bcache device",
            FsKind::Zfs => "ZFS pool member",
            FsKind::Bluestore => "Ceph BlueStore device",
            FsKind::Vmfs => "VMFS datastore",
            k => return format!("{k} signature"),
        };
        name.to_string()
    }
}

/// Everything [`probe`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub size: u64,
    pub table: Option<TableKind>,
    pub partitions: Vec<Partition>,
    pub filesystems: Vec<Filesystem>,
    /// No partition table, no filesystem signature, first and last MiB zero.
    /// A zero-byte device is never blank: there is nothing to format.
    pub blank: bool,
}

/// How much of each end of the device must be zero for it to count as blank.
const BLANK_SPAN: u64 = 1 << 20;

/// The volume identifier of the ISO 9660 image in `r` (the reader the
/// initramfs uses to find its boot medium, and `b2d up --iso` to check a
/// file; empty when the volume has none), or None when `r` holds no ISO 9660 primary volume descriptor.
pub fn iso9660_label<R: Read + Seek>(r: &mut R) -> Option<String> {
    let size = r.seek(SeekFrom::End(0)).ok()?;
    let mut dev = Dev { r, size };
    let found = fs::iso9660(&mut dev, Region { base: 0, len: size }).ok()??;
    Some(found.label.unwrap_or_default())
}

/// Probe a device or image of `size` bytes.
///
/// The reader's position is left wherever the last read put it.
pub fn probe<R: Read + Seek>(r: &mut R, size: u64) -> io::Result<Report> {
    let mut dev = Dev { r, size };
    let whole = Region { base: 0, len: size };
    let mut filesystems = Vec::new();
    let found_whole = fs::detect(&mut dev, whole)?;
    // A boot-sector filesystem (FAT, NTFS) or a header that owns sector 0
    // (LUKS, XFS) can carry 0x55AA by design or chance; it is not an MBR.
    let owns_sector0 = found_whole.iter().any(|f| {
        matches!(
            f.kind,
            FsKind::Vfat | FsKind::Ntfs | FsKind::Luks | FsKind::Xfs
        )
    });
    filesystems.extend(found_whole.into_iter().map(|f| f.at(0, None)));

    let (table, partitions) = if owns_sector0 {
        log::debug!("probe: filesystem at byte 0 owns sector 0, not reading a table");
        (None, Vec::new())
    } else {
        match table::read(&mut dev)? {
            Some((kind, parts)) => (Some(kind), parts),
            None => (None, Vec::new()),
        }
    };

    for p in &partitions {
        if p.start >= size {
            log::debug!("probe: partition {} starts past the end", p.number);
            continue;
        }
        let len = p.size.min(size - p.start);
        let found = fs::detect(&mut dev, Region { base: p.start, len })?;
        filesystems.extend(found.into_iter().map(|f| f.at(p.start, Some(p.number))));
    }

    let blank = table.is_none() && filesystems.is_empty() && ends_are_zero(&mut dev)?;
    Ok(Report {
        size,
        table,
        partitions,
        filesystems,
        blank,
    })
}

/// True when the first and last [`BLANK_SPAN`] bytes (or all of a smaller
/// device) read back as zeros. Unreadable bytes count as not zero.
fn ends_are_zero<R: Read + Seek>(dev: &mut Dev<'_, R>) -> io::Result<bool> {
    if dev.size == 0 {
        return Ok(false);
    }
    let head = dev.size.min(BLANK_SPAN);
    let tail_start = dev.size.saturating_sub(BLANK_SPAN).max(head);
    Ok(dev.range_is_zero(0, head)? && dev.range_is_zero(tail_start, dev.size)?)
}

/// A reader plus the size it claims, with bounds-checked positioned reads.
pub(crate) struct Dev<'a, R> {
    r: &'a mut R,
    size: u64,
}

impl<R: Read + Seek> Dev<'_, R> {
    /// Fill `buf` from byte `off`. `Ok(false)` when the range lies outside
    /// the device or the reader ends early; `Err` only for real I/O errors.
    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> io::Result<bool> {
        if !matches!(off.checked_add(buf.len() as u64), Some(end) if end <= self.size) {
            return Ok(false);
        }
        self.r.seek(SeekFrom::Start(off))?;
        match self.r.read_exact(buf) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                log::debug!("probe: short read at {off}: reader smaller than its size");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// True when every byte in `start..end` reads as zero.
    fn range_is_zero(&mut self, start: u64, end: u64) -> io::Result<bool> {
        let mut buf = [0u8; 64 * 1024];
        let mut pos = start;
        while pos < end {
            let n = (end - pos).min(buf.len() as u64) as usize;
            if !self.read_at(pos, &mut buf[..n])? || buf[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
            pos += n as u64;
        }
        Ok(true)
    }
}

/// A window of the device: the whole of it, or one partition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    base: u64,
    len: u64,
}

impl Region {
    /// Read `buf.len()` bytes at `off` inside this region; `Ok(false)` when
    /// they do not fit in it.
    fn read<R: Read + Seek>(
        &self,
        dev: &mut Dev<'_, R>,
        off: u64,
        buf: &mut [u8],
    ) -> io::Result<bool> {
        match off.checked_add(buf.len() as u64) {
            Some(end) if end <= self.len => dev.read_at(self.base + off, buf),
            _ => Ok(false),
        }
    }
}

pub(crate) use crate::disk::bytes::{be16, be32, be64, le16, le32, le64};

/// A byte string up to its first NUL, as UTF-8 (lossy), with trailing
/// spaces removed; `None` when nothing is left.
pub(crate) fn text(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = String::from_utf8_lossy(&b[..end]);
    let s = s.trim_end_matches(' ');
    (!s.is_empty()).then(|| s.to_string())
}

/// UTF-16LE up to the first NUL code unit; `None` when empty.
pub(crate) fn utf16le(b: &[u8]) -> Option<String> {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let s = String::from_utf16_lossy(&units);
    (!s.is_empty()).then_some(s)
}

/// 16 bytes in on-disk order as a dashed lower-case UUID (ext, xfs, btrfs,
/// swap store theirs this way). All zeros means "no UUID".
pub(crate) fn uuid_be(b: &[u8; 16]) -> Option<String> {
    if b.iter().all(|&x| x == 0) {
        return None;
    }
    Some(dashed(b))
}

/// A GPT / Microsoft GUID: the first three fields are little-endian.
pub(crate) fn guid_le(b: &[u8; 16]) -> String {
    let mut o = *b;
    o[0..4].reverse();
    o[4..6].reverse();
    o[6..8].reverse();
    dashed(&o)
}

fn dashed(b: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}
