//! The format journal: before the first destructive write, the validated
//! userdata archive is copied, with a self-checking header, to
//! [`JOURNAL_OFFSET`]. A boot that finds a valid journal on a disk that is
//! otherwise only b2d's half-made layout finishes formatting with the same
//! archive. The journal is cleared once the data filesystem is committed.
//!
//! Header (one 4 KiB block, little-endian):
//! `magic[16] | version u32 | flags u32 | archive_len u64 | disk_size u64 |
//!  archive_sha256[32] | header_sha256[32]` (the last over all bytes before it);
//! the archive follows at `JOURNAL_OFFSET + 4096`.

use super::bytes::{le32, le64};
use super::layout::JOURNAL_OFFSET;
use super::userdata::MAX_ARCHIVE;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Seek, SeekFrom, Write};

pub const MAGIC: &[u8; 16] = b"b2d-fmt-journal\0";
const VERSION: u32 = 1;
const HEADER: usize = 4096;
const FIELDS: usize = 16 + 4 + 4 + 8 + 8 + 32;

/// A journal read back from a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    /// The userdata archive (empty for a disk that was blank).
    pub archive: Vec<u8>,
    /// Size of the disk when formatting began.
    pub disk_size: u64,
}

fn header_bytes(archive: &[u8], disk_size: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&(archive.len() as u64).to_le_bytes());
    h.extend_from_slice(&disk_size.to_le_bytes());
    h.extend_from_slice(&Sha256::digest(archive));
    let sum = Sha256::digest(&h);
    h.extend_from_slice(&sum);
    h.resize(HEADER, 0);
    h
}

/// Write the journal: archive first, flushed, then the header, flushed.
/// A torn write leaves no valid journal, so the disk's earlier state rules.
pub fn write<D: Write + Seek>(
    dev: &mut D,
    archive: &[u8],
    disk_size: u64,
    flush: &mut dyn FnMut(&mut D) -> io::Result<()>,
) -> io::Result<()> {
    if archive.len() > MAX_ARCHIVE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "journal: archive over 1 MiB",
        ));
    }
    dev.seek(SeekFrom::Start(JOURNAL_OFFSET + HEADER as u64))?;
    dev.write_all(archive)?;
    flush(dev)?;
    dev.seek(SeekFrom::Start(JOURNAL_OFFSET))?;
    dev.write_all(&header_bytes(archive, disk_size))?;
    flush(dev)
}

/// Read a journal; `Ok(None)` when there is none or it does not verify.
pub fn read<D: Read + Seek>(dev: &mut D) -> io::Result<Option<Journal>> {
    let mut h = [0u8; FIELDS + 32];
    dev.seek(SeekFrom::Start(JOURNAL_OFFSET))?;
    if let Err(e) = dev.read_exact(&mut h) {
        return if e.kind() == io::ErrorKind::UnexpectedEof {
            Ok(None)
        } else {
            Err(e)
        };
    }
    if &h[..16] != MAGIC {
        return Ok(None);
    }
    if Sha256::digest(&h[..FIELDS]).as_slice() != &h[FIELDS..] {
        log::warn!("format journal header at {JOURNAL_OFFSET:#x} fails its checksum; ignored");
        return Ok(None);
    }
    if le32(&h, 16) != VERSION {
        log::warn!(
            "format journal version {} is not understood; ignored",
            le32(&h, 16)
        );
        return Ok(None);
    }
    let len = le64(&h, 24);
    if len > MAX_ARCHIVE as u64 {
        return Ok(None);
    }
    let mut archive = vec![0u8; len as usize];
    dev.seek(SeekFrom::Start(JOURNAL_OFFSET + HEADER as u64))?;
    if let Err(e) = dev.read_exact(&mut archive) {
        return if e.kind() == io::ErrorKind::UnexpectedEof {
            Ok(None)
        } else {
            Err(e)
        };
    }
    if Sha256::digest(&archive).as_slice() != &h[40..72] {
        log::warn!("format journal archive fails its checksum; ignored");
        return Ok(None);
    }
    Ok(Some(Journal {
        archive,
        disk_size: le64(&h, 32),
    }))
}

/// Invalidate the journal (zero its header block).
pub fn clear<D: Write + Seek>(dev: &mut D) -> io::Result<()> {
    dev.seek(SeekFrom::Start(JOURNAL_OFFSET))?;
    dev.write_all(&[0u8; HEADER])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn disk() -> Cursor<Vec<u8>> {
        Cursor::new(vec![0u8; 4 << 20])
    }
    fn noflush(_: &mut Cursor<Vec<u8>>) -> io::Result<()> {
        Ok(())
    }

    #[test]
    fn round_trips_and_clears() {
        let mut d = disk();
        assert_eq!(read(&mut d).unwrap(), None);
        write(&mut d, b"archive bytes", 1 << 30, &mut noflush).unwrap();
        let j = read(&mut d).unwrap().unwrap();
        assert_eq!(j.archive, b"archive bytes");
        assert_eq!(j.disk_size, 1 << 30);
        clear(&mut d).unwrap();
        assert_eq!(read(&mut d).unwrap(), None);
    }

    #[test]
    fn empty_archive_is_a_valid_journal() {
        let mut d = disk();
        write(&mut d, b"", 99, &mut noflush).unwrap();
        assert_eq!(read(&mut d).unwrap().unwrap().archive, b"");
    }

    #[test]
    fn any_flipped_bit_invalidates() {
        let mut d = disk();
        write(&mut d, b"keys", 7, &mut noflush).unwrap();
        for off in [0u64, 20, 24, 32, 40, 71, 72, 100, 4096, 4099] {
            let mut c = d.clone();
            c.get_mut()[(JOURNAL_OFFSET + off) as usize] ^= 1;
            assert_eq!(read(&mut c).unwrap(), None, "flip at +{off}");
        }
    }

    #[test]
    fn torn_write_without_header_is_no_journal() {
        let mut d = disk();
        let mut n = 0;
        // Header write "fails" (second flush): archive is there, header is not.
        let r = write(&mut d, b"keys", 7, &mut |c: &mut Cursor<Vec<u8>>| {
            n += 1;
            if n == 1 {
                Ok(())
            } else {
                // Simulate the header never reaching the disk.
                let start = JOURNAL_OFFSET as usize;
                c.get_mut()[start..start + HEADER].fill(0);
                Err(io::Error::other("power cut"))
            }
        });
        assert!(r.is_err());
        assert_eq!(read(&mut d).unwrap(), None);
    }

    #[test]
    fn short_device_is_no_journal() {
        let mut d = Cursor::new(vec![0u8; 1000]);
        assert_eq!(read(&mut d).unwrap(), None);
        let mut hdr_only = Cursor::new(header_bytes(b"x", 1));
        let mut v = vec![0u8; JOURNAL_OFFSET as usize];
        v.extend_from_slice(hdr_only.get_mut());
        assert_eq!(read(&mut Cursor::new(v)).unwrap(), None);
    }
}
