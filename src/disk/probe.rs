//! Partition-table and filesystem signature probing over `Read + Seek`.
//! STUB — being written; the signatures below are the agreed interface.

use serde::Serialize;
use std::io::{self, Read, Seek};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Mbr,
    Gpt,
}

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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filesystem {
    /// Byte offset of the filesystem on the probed device.
    pub offset: u64,
    /// Partition number it lives in, `None` for the whole device.
    pub partition: Option<u32>,
    pub kind: FsKind,
    pub label: Option<String>,
    pub uuid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub size: u64,
    pub table: Option<TableKind>,
    pub partitions: Vec<Partition>,
    pub filesystems: Vec<Filesystem>,
    /// No partition table, no filesystem signature, first and last MiB zero.
    pub blank: bool,
}

/// Probe a device or image of `size` bytes.
pub fn probe<R: Read + Seek>(_r: &mut R, size: u64) -> io::Result<Report> {
    Ok(Report {
        size,
        table: None,
        partitions: Vec::new(),
        filesystems: Vec::new(),
        blank: false,
    })
}
