//! Writing b2d's GPT (via gptman) and growing partition 1 when the disk
//! was enlarged.

use crate::disk::layout::{
    Layout, DATA_PART_NAME, LINUX_FS_GUID, LINUX_SWAP_GUID, SECTOR, SWAP_PART_NAME,
};
use gptman::{GPTPartitionEntry, GPT};
use std::io::{self, Read, Seek, Write};

fn gpt_err(e: gptman::Error) -> io::Error {
    io::Error::other(format!("GPT: {e}"))
}

/// A GUID string (`0fc63daf-8483-…`) in GPT's on-disk mixed-endian form.
pub fn guid_bytes(s: &str) -> [u8; 16] {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

/// 16 random bytes shaped as a version-4 GUID.
pub fn random_guid() -> [u8; 16] {
    let mut b = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        // No urandom: derive from the clock and pid; uniqueness is all GPT needs.
        use sha2::{Digest, Sha256};
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        b.copy_from_slice(&Sha256::digest(seed.as_bytes())[..16]);
    }
    b[7] = (b[7] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

/// Write the partition table for `layout`: GPT (primary, then backup), then
/// the protective MBR last, so byte 0 keeps the magic until the GPT is whole.
pub fn write<D: Read + Write + Seek>(dev: &mut D, layout: &Layout) -> io::Result<()> {
    let mut gpt = GPT::new_from(dev, SECTOR, random_guid()).map_err(gpt_err)?;
    gpt.align = 2048;
    gpt[1] = GPTPartitionEntry {
        partition_type_guid: guid_bytes(LINUX_FS_GUID),
        unique_partition_guid: random_guid(),
        starting_lba: layout.data.start / SECTOR,
        ending_lba: layout.data.end / SECTOR - 1,
        attribute_bits: 0,
        partition_name: DATA_PART_NAME.into(),
    };
    if let Some(swap) = &layout.swap {
        gpt[2] = GPTPartitionEntry {
            partition_type_guid: guid_bytes(LINUX_SWAP_GUID),
            unique_partition_guid: random_guid(),
            starting_lba: swap.start / SECTOR,
            ending_lba: swap.end / SECTOR - 1,
            attribute_bits: 0,
            partition_name: SWAP_PART_NAME.into(),
        };
    }
    gpt.write_into(dev).map_err(gpt_err)?;
    GPT::write_protective_mbr_into(dev, SECTOR).map_err(gpt_err)?;
    Ok(())
}

/// If the disk grew since b2d wrote its GPT, move the backup GPT to the
/// new end and extend partition 1 to the new last usable sector. Returns
/// true when the table changed. Only b2d's own table (partition 1 named
/// `boot2docker-data` and last on the disk) is touched.
pub fn grow<D: Read + Write + Seek>(dev: &mut D) -> io::Result<bool> {
    let mut gpt = GPT::read_from(dev, SECTOR).map_err(gpt_err)?;
    let old_last = gpt.header.last_usable_lba;
    gpt.header.update_from(dev, SECTOR).map_err(gpt_err)?;
    let new_last = gpt.header.last_usable_lba;
    if new_last <= old_last {
        return Ok(false);
    }
    let p1 = &gpt[1];
    let is_ours = p1.partition_name.as_str() == DATA_PART_NAME && p1.ending_lba == old_last;
    let last_on_disk = gpt
        .iter()
        .all(|(_, p)| p.is_unused() || p.ending_lba <= old_last);
    if !is_ours || !last_on_disk {
        log::info!("disk grew but partition 1 is not b2d's last partition; table left as is");
        return Ok(false);
    }
    gpt[1].ending_lba = new_last;
    gpt.write_into(dev).map_err(gpt_err)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::layout::{layout, GIB};
    use crate::disk::probe::{probe, TableKind};

    /// A sparse-ish in-memory disk: 2 GiB would be too big, so use a file.
    fn disk(size: u64) -> std::fs::File {
        let f = tempfile::tempfile().unwrap();
        f.set_len(size).unwrap();
        f
    }

    #[test]
    fn guid_bytes_are_mixed_endian() {
        let b = guid_bytes(LINUX_FS_GUID);
        assert_eq!(&b[..4], &[0xaf, 0x3d, 0xc6, 0x0f]);
        assert_eq!(&b[8..], &[0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4]);
    }

    #[test]
    fn writes_b2d_layout_the_prober_reads_back() {
        let mut d = disk(2 * GIB);
        let l = layout(2 * GIB).unwrap();
        write(&mut d, &l).unwrap();
        let r = probe(&mut d, 2 * GIB).unwrap();
        assert_eq!(r.table, Some(TableKind::Gpt));
        assert_eq!(r.partitions.len(), 2);
        let p1 = r.partitions.iter().find(|p| p.number == 1).unwrap();
        assert_eq!(p1.start, l.data.start);
        assert_eq!(p1.start + p1.size, l.data.end);
        assert_eq!(p1.name.as_deref(), Some(DATA_PART_NAME));
        assert_eq!(p1.type_id, LINUX_FS_GUID);
        let p2 = r.partitions.iter().find(|p| p.number == 2).unwrap();
        assert_eq!(p2.start, 1 << 20);
        assert_eq!(p2.type_id, LINUX_SWAP_GUID);
    }

    #[test]
    fn grows_partition_one_to_the_new_end() {
        let mut d = disk(2 * GIB);
        write(&mut d, &layout(2 * GIB).unwrap()).unwrap();
        assert!(!grow(&mut d).unwrap(), "same size: nothing to do");
        d.set_len(3 * GIB).unwrap();
        assert!(grow(&mut d).unwrap());
        let r = probe(&mut d, 3 * GIB).unwrap();
        let p1 = r.partitions.iter().find(|p| p.number == 1).unwrap();
        assert_eq!(p1.start + p1.size, layout(3 * GIB).unwrap().data.end);
        assert!(!grow(&mut d).unwrap());
    }

    #[test]
    fn grow_leaves_foreign_tables_alone() {
        let mut d = disk(GIB);
        let mut gpt = GPT::new_from(&mut d, SECTOR, random_guid()).unwrap();
        gpt[1] = GPTPartitionEntry {
            partition_type_guid: guid_bytes(LINUX_FS_GUID),
            unique_partition_guid: random_guid(),
            starting_lba: 2048,
            ending_lba: gpt.header.last_usable_lba,
            attribute_bits: 0,
            partition_name: "home".into(),
        };
        gpt.write_into(&mut d).unwrap();
        d.set_len(2 * GIB).unwrap();
        assert!(!grow(&mut d).unwrap());
    }
}
