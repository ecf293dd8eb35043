//! The format journal: before the first destructive write, the validated
//! userdata archive is copied, with a self-checking header, to
//! [`JOURNAL_OFFSET`]. A boot that finds a valid journal on a disk that is
//! otherwise only b2d's half-made layout finishes formatting with the same
//! archive. Once the data filesystem is committed, the whole journal
//! region ([`REGION`] bytes: header and room for the largest archive) is
//! zeroed: the archive carries private keys.
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
/// Bytes from [`JOURNAL_OFFSET`] the journal may occupy: its header and
/// the largest archive.
pub const REGION: u64 = HEADER as u64 + MAX_ARCHIVE as u64;

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

/// Zero the whole journal region: the archive's room first, flushed, then
/// the header, flushed. A torn clear leaves either a header whose archive
/// no longer verifies (found again and zeroed by the next clear) or
/// nothing; never a copy of the archive without its header.
pub fn clear<D: Write + Seek>(
    dev: &mut D,
    flush: &mut dyn FnMut(&mut D) -> io::Result<()>,
) -> io::Result<()> {
    zero(dev, JOURNAL_OFFSET + HEADER as u64, MAX_ARCHIVE as u64)?;
    flush(dev)?;
    zero(dev, JOURNAL_OFFSET, HEADER as u64)?;
    flush(dev)
}

/// Write `len` zero bytes at `start`.
pub(crate) fn zero<D: Write + Seek>(dev: &mut D, start: u64, len: u64) -> io::Result<()> {
    const CHUNK: usize = 64 * 1024;
    let zeros = [0u8; CHUNK];
    dev.seek(SeekFrom::Start(start))?;
    let mut left = len;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        dev.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    Ok(())
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
        clear(&mut d, &mut noflush).unwrap();
        assert_eq!(read(&mut d).unwrap(), None);
    }

    #[test]
    fn clear_zeroes_header_and_the_room_of_the_largest_archive() {
        let mut d = disk();
        let start = JOURNAL_OFFSET as usize;
        let end = start + REGION as usize;
        d.get_mut()[start - 1] = 0xAA;
        d.get_mut()[end] = 0xBB;
        write(&mut d, &vec![0x5A; MAX_ARCHIVE], 1 << 30, &mut noflush).unwrap();
        let mut flushed_with_header = Vec::new();
        clear(&mut d, &mut |c: &mut Cursor<Vec<u8>>| {
            flushed_with_header.push(c.get_ref()[start..start + 16] == MAGIC[..]);
            Ok(())
        })
        .unwrap();
        assert!(d.get_ref()[start..end].iter().all(|&b| b == 0));
        assert_eq!((d.get_ref()[start - 1], d.get_ref()[end]), (0xAA, 0xBB));
        // The archive went first, while the header still named it.
        assert_eq!(flushed_with_header, [true, false]);
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
