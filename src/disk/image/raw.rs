//! Raw images: the file is the virtual disk.
//!
//! Writing is `head` at offset 0 and `set_len` to the size; the rest is a
//! hole. The size is rounded up to a whole 512-byte sector so every hypervisor
//! accepts it as a disk.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::layout::{round_up, Layout};
use super::{DiskImage, FormatLimit, ImageError, ImageFormat};
use crate::errors::WithPath;

pub(crate) fn effective_size(size: u64) -> Result<u64, FormatLimit> {
    round_up(size, 512).ok_or(FormatLimit::TooLarge(size))
}

pub(crate) fn layout(size: u64, head: &[u8]) -> Result<Layout, FormatLimit> {
    let mut l = Layout::new(size);
    l.put(0, head.to_vec());
    Ok(l)
}

pub(crate) fn open<R: Read + Seek + 'static>(
    mut inner: R,
    len: u64,
    path: &Path,
) -> Result<DiskImage, ImageError> {
    inner.seek(SeekFrom::Start(0)).with_path("rewind", path)?;
    Ok(DiskImage {
        format: ImageFormat::Raw,
        virtual_size: len,
        reader: Box::new(inner),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn layout_is_head_then_hole() {
        let l = layout(4096, b"hello").unwrap();
        assert_eq!(l.len, 4096);
        assert_eq!(l.writes, vec![(0, b"hello".to_vec())]);
        assert_eq!(effective_size(1000).unwrap(), 1024);
        assert!(effective_size(u64::MAX).is_err());
    }

    #[test]
    fn open_reports_file_length() {
        let mut c = Cursor::new(vec![7u8; 1536]);
        c.seek(SeekFrom::End(0)).unwrap();
        let mut img = open(c, 1536, Path::new("r")).unwrap();
        let mut first = [0u8; 1];
        img.reader.read_exact(&mut first).unwrap();
        assert_eq!(first, [7]);
        assert_eq!(img.virtual_size, 1536);
        img.reader.seek(SeekFrom::Start(1535)).unwrap();
        let mut b = [0u8; 4];
        assert_eq!(img.reader.read(&mut b).unwrap(), 1);
    }
}
