//! Where b2d puts things on a data disk it formats (boot2docker 18.09+
//! layout): GPT; partition 2 = swap placed first on the disk; partition 1 =
//! ext4 filling the rest. The format journal lives inside the swap region
//! (or the reserved gap of a swapless disk) past its first 64 KiB, where
//! neither the GPT nor mkswap's header page reach.

use std::ops::Range;

pub const SECTOR: u64 = 512;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// Label of a finished data filesystem (the commit mark).
pub const DATA_LABEL: &str = "boot2docker-data";
/// Label the data filesystem carries until formatting is complete.
pub const FORMATTING_LABEL: &str = "b2d-formatting";
pub const SWAP_LABEL: &str = "boot2dockerswap";
/// GPT partition names b2d writes; a half-formatted disk is recognised by them.
pub const DATA_PART_NAME: &str = "boot2docker-data";
pub const SWAP_PART_NAME: &str = "boot2dockerswap";
/// GPT type GUIDs: Linux filesystem data, Linux swap (mixed-endian on disk).
pub const LINUX_FS_GUID: &str = "0fc63daf-8483-4772-8e79-3d69d8477de4";
pub const LINUX_SWAP_GUID: &str = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f";

/// Byte offset of the format journal: 1 MiB (start of the swap region) + 64 KiB.
pub const JOURNAL_OFFSET: u64 = MIB + 64 * 1024;
/// End of the primary GPT b2d writes: protective MBR, header and 128
/// entries of 128 bytes (LBA 0 to 33).
pub const PRIMARY_GPT_END: u64 = 34 * SECTOR;
/// Where the first partition of b2d's layout starts, at the earliest.
pub const FIRST_PARTITION_MIN: u64 = MIB;
/// Data partition start on disks too small for swap; leaves room for the journal.
pub const NO_SWAP_DATA_START: u64 = 4 * MIB;
/// Disks smaller than this are never formatted.
pub const MIN_FORMAT_SIZE: u64 = 64 * MIB;
/// Sectors the backup GPT (128 entries + header) takes at the end; the
/// last usable LBA is the one before them.
const BACKUP_GPT_SECTORS: u64 = 33;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Byte range of partition 2 (swap), if the disk gets one.
    pub swap: Option<Range<u64>>,
    /// Byte range of partition 1 (data).
    pub data: Range<u64>,
}

/// `N MiB`, with one decimal (rounded down) when not whole.
fn mib(bytes: u64) -> String {
    if bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else {
        let tenths = bytes / (MIB / 10);
        format!("{}.{} MiB", tenths / 10, tenths % 10)
    }
}

/// `swap 128 MiB at 1 MiB, data 894.9 MiB at 129 MiB` (or `no swap, …`).
impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.swap {
            Some(s) => write!(f, "swap {} at {}, ", mib(s.end - s.start), mib(s.start))?,
            None => f.write_str("no swap, ")?,
        }
        let d = &self.data;
        write!(f, "data {} at {}", mib(d.end - d.start), mib(d.start))
    }
}

/// Swap size by disk size: 1000 MiB; disk/8 (MiB-aligned) under 8 GiB; none under 1 GiB.
pub fn swap_size(disk: u64) -> u64 {
    if disk < GIB {
        0
    } else if disk < 8 * GIB {
        disk / 8 / MIB * MIB
    } else {
        1000 * MIB
    }
}

/// Last usable byte (exclusive) for partitions on a GPT disk of `disk` bytes.
pub fn usable_end(disk: u64) -> u64 {
    (disk / SECTOR - BACKUP_GPT_SECTORS) * SECTOR
}

/// The layout for a disk of `disk` bytes, or `None` if it is too small.
pub fn layout(disk: u64) -> Option<Layout> {
    if disk < MIN_FORMAT_SIZE {
        return None;
    }
    let swap = swap_size(disk);
    let (swap, data_start) = if swap == 0 {
        (None, NO_SWAP_DATA_START)
    } else {
        (Some(MIB..MIB + swap), MIB + swap)
    };
    Some(Layout {
        swap,
        data: data_start..usable_end(disk),
    })
}

/// Kernel name of partition `n` of disk `disk` (`sda`→`sda1`, `nvme0n1`→`nvme0n1p1`).
pub fn partition_name(disk: &str, n: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{n}")
    } else {
        format!("{disk}{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_rules_follow_boot2docker() {
        assert_eq!(swap_size(GIB - 1), 0);
        assert_eq!(swap_size(GIB), 128 * MIB);
        assert_eq!(swap_size(4 * GIB), 512 * MIB);
        assert_eq!(swap_size(8 * GIB), 1000 * MIB);
        assert_eq!(swap_size(2 << 40), 1000 * MIB);
    }

    #[test]
    fn layouts_put_swap_first_and_fill_the_disk() {
        let l = layout(20 * GIB).unwrap();
        assert_eq!(l.swap, Some(MIB..1001 * MIB));
        assert_eq!(l.data.start, 1001 * MIB);
        assert_eq!(l.data.end, 20 * GIB - 33 * SECTOR);
        // The journal sits inside swap, past its first 64 KiB, with room for 1 MiB of archive.
        let swap = l.swap.unwrap();
        assert!(JOURNAL_OFFSET >= swap.start + 64 * 1024);
        assert!(JOURNAL_OFFSET + 4096 + MIB <= swap.end);

        assert!(l.data.start.min(swap.start) >= FIRST_PARTITION_MIN);

        let small = layout(512 * MIB).unwrap();
        assert_eq!(small.swap, None);
        assert_eq!(small.data.start, NO_SWAP_DATA_START);
        assert!(JOURNAL_OFFSET + 4096 + MIB <= small.data.start);
        assert!(small.data.start >= FIRST_PARTITION_MIN);
        assert!(layout(MIN_FORMAT_SIZE - 1).is_none());
    }

    #[test]
    fn layouts_read_as_sizes_not_ranges() {
        assert_eq!(
            layout(GIB).unwrap().to_string(),
            "swap 128 MiB at 1 MiB, data 894.9 MiB at 129 MiB"
        );
        assert_eq!(
            layout(512 * MIB).unwrap().to_string(),
            "no swap, data 507.9 MiB at 4 MiB"
        );
    }

    #[test]
    fn partition_names_match_the_kernel() {
        assert_eq!(partition_name("sda", 1), "sda1");
        assert_eq!(partition_name("vdb", 2), "vdb2");
        assert_eq!(partition_name("nvme0n1", 1), "nvme0n1p1");
        assert_eq!(partition_name("loop7", 2), "loop7p2");
    }
}
