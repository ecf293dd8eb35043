//! The docker-machine / boot2docker magic: 29 ASCII bytes at byte 0 of the
//! data disk. It is also the name and content of the first userdata entry.

use std::io::{self, Read, Seek, SeekFrom};

/// The magic string, byte for byte as docker-machine writes it.
pub const MAGIC: &[u8; 29] = b"boot2docker, please format-me";

/// True when `r` starts with [`MAGIC`]. A short read is `false`, not an error.
pub fn has_magic<R: Read + Seek>(r: &mut R) -> io::Result<bool> {
    r.seek(SeekFrom::Start(0))?;
    let mut buf = [0u8; MAGIC.len()];
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => return Ok(false),
            n => got += n,
        }
    }
    Ok(&buf == MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn detects_magic_at_zero_only() {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[0; 100]);
        assert!(has_magic(&mut Cursor::new(&v)).unwrap());
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(MAGIC);
        assert!(!has_magic(&mut Cursor::new(&shifted)).unwrap());
        assert!(!has_magic(&mut Cursor::new(&MAGIC[..10])).unwrap());
        let mut wrong = *MAGIC;
        wrong[28] = b'E';
        assert!(!has_magic(&mut Cursor::new(&wrong)).unwrap());
    }
}
