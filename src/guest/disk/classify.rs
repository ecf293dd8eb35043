//! What a disk is to b2d, by the rules of DESIGN.md ("Which disk"):
//! (1) a filesystem labelled `boot2docker-data` → mount it;
//! (2) a disk left half-formatted by b2d (valid journal, nothing but b2d's
//!     own layout on it) → finish it;
//! (3) the magic at byte 0 with a valid archive, and nothing else → format it;
//! (4) blank → format it without userdata;
//! anything else is foreign and is never written: that includes a disk
//! that belongs to a volume manager or RAID (LVM2, md, bcache, ZFS, Ceph,
//! VMFS), which the prober reports like a filesystem, even when a stale
//! journal of an interrupted b2d format is also on it.

use crate::disk::journal;
use crate::disk::layout::{
    self, DATA_LABEL, DATA_PART_NAME, FORMATTING_LABEL, SWAP_LABEL, SWAP_PART_NAME,
};
use crate::disk::probe::{FsKind, Report, TableKind};
use crate::disk::{magic, userdata};
use std::fmt;
use std::io::{Read, Seek, SeekFrom};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Rule 1: mount partition `partition` (None = the whole disk).
    Data { partition: Option<u32> },
    /// Rule 2: finish formatting with the journal's archive.
    Resume { archive: Vec<u8> },
    /// Rule 3: format with this validated archive.
    Magic { archive: Vec<u8> },
    /// Rule 4: format without userdata.
    Blank,
    /// Never written; the reason is logged and reported.
    Foreign(String),
}

/// What the disk is to b2d and what will happen to it, for the console.
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Data { partition: Some(n) } => {
                write!(f, "b2d data filesystem (partition {n})")
            }
            Verdict::Data { partition: None } => f.write_str("b2d data filesystem (whole disk)"),
            Verdict::Resume { .. } => f.write_str("half-formatted by b2d: will finish"),
            Verdict::Magic { .. } => f.write_str("magic disk: will format"),
            Verdict::Blank => f.write_str("blank: will format"),
            Verdict::Foreign(why) => write!(f, "not ours, left alone: {why}"),
        }
    }
}

impl Verdict {
    /// Lower is preferred; candidates of equal rank are chosen by size.
    pub fn rank(&self) -> Option<u8> {
        match self {
            Verdict::Data { .. } => Some(1),
            Verdict::Resume { .. } => Some(2),
            Verdict::Magic { .. } => Some(3),
            Verdict::Blank => Some(4),
            Verdict::Foreign(_) => None,
        }
    }
}

fn is_ext(k: FsKind) -> bool {
    matches!(k, FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4)
}

/// True when the disk holds nothing but what b2d's own formatting writes
/// (no table or a protective MBR; a GPT with b2d's names; our labels).
fn only_our_layout(r: &Report) -> bool {
    let table_ok = match r.table {
        None => r.partitions.is_empty(),
        Some(TableKind::Mbr) => r.partitions.iter().all(|p| p.type_id == "0xee"),
        Some(TableKind::Gpt) => r.partitions.iter().all(|p| {
            matches!(
                p.name.as_deref(),
                Some(DATA_PART_NAME) | Some(SWAP_PART_NAME)
            )
        }),
    };
    let fs_ok = r.filesystems.iter().all(|f| {
        f.partition.is_some()
            && ((is_ext(f.kind) && f.label.as_deref() == Some(FORMATTING_LABEL))
                || (f.kind == FsKind::Swap && f.label.as_deref() == Some(SWAP_LABEL)))
    });
    table_ok && fs_ok
}

fn describe(r: &Report) -> String {
    let mut parts = Vec::new();
    if let Some(t) = r.table {
        parts.push(format!(
            "{t} partition table with {} partition(s)",
            r.partitions.len()
        ));
    }
    for f in &r.filesystems {
        let label = f
            .label
            .as_deref()
            .map(|l| format!(" labelled \"{}\"", l.escape_debug()))
            .unwrap_or_default();
        let place = f
            .partition
            .map(|n| format!(" in partition {n}"))
            .unwrap_or_default();
        parts.push(format!("{}{label}{place}", f.what()));
    }
    if parts.is_empty() {
        parts.push("no magic, not blank (data in its first or last MiB)".into());
    }
    parts.join(", ")
}

/// Classify the disk behind `dev` (`size` bytes) given its probe `report`.
/// Only reads.
pub fn classify<D: Read + Seek>(
    dev: &mut D,
    size: u64,
    report: &Report,
) -> std::io::Result<Verdict> {
    if let Some(f) = report
        .filesystems
        .iter()
        .find(|f| is_ext(f.kind) && f.label.as_deref() == Some(DATA_LABEL))
    {
        return Ok(Verdict::Data {
            partition: f.partition,
        });
    }
    if size < layout::MIN_FORMAT_SIZE {
        return Ok(Verdict::Foreign(format!(
            "too small to format ({size} bytes)"
        )));
    }
    if let Some(j) = journal::read(dev)? {
        if only_our_layout(report) {
            return Ok(Verdict::Resume { archive: j.archive });
        }
        log::warn!(
            "a b2d format journal is present but the disk holds {}; left alone",
            describe(report)
        );
    }
    if magic::has_magic(dev)? {
        if report.table.is_some() || !report.filesystems.is_empty() {
            return Ok(Verdict::Foreign(format!(
                "magic present but the disk also holds {}",
                describe(report)
            )));
        }
        dev.seek(SeekFrom::Start(0))?;
        let limited = (&mut *dev).take(userdata::MAX_ARCHIVE as u64 + 1024);
        return Ok(match userdata::read(limited) {
            Ok(a) if a.has_magic_entry() => {
                dev.seek(SeekFrom::Start(0))?;
                let mut bytes = vec![0u8; a.len];
                dev.read_exact(&mut bytes)?;
                Verdict::Magic { archive: bytes }
            }
            Ok(_) => Verdict::Foreign(
                "magic present but the archive's first entry is not the magic file".into(),
            ),
            Err(e) => Verdict::Foreign(format!("magic present but {e}")),
        });
    }
    if report.blank {
        return Ok(Verdict::Blank);
    }
    Ok(Verdict::Foreign(describe(report)))
}
