//! Reading a sparse image's virtual disk through a block map.
//!
//! Each format supplies a [`BlockMap`]: given a virtual offset it answers
//! "the next `len` bytes are zeros" or "the next `len` bytes live at host
//! offset `h`". [`MappedReader`] turns that into `Read + Seek`, checks every
//! host range against the file length, and never allocates more than the
//! caller's buffer.

use crate::errors::PathError;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Where a run of the virtual disk comes from. `len` is never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    Zero { len: u64 },
    Data { host: u64, len: u64 },
}

/// A format's translation from virtual offsets to host offsets.
pub(crate) trait BlockMap {
    /// Resolve `off` (always below the virtual size) to the run starting
    /// there. Runs may extend past the virtual size; the reader clamps them.
    fn lookup(&mut self, file: &mut dyn ReadSeek, off: u64) -> io::Result<Run>;
}

use super::{ImageError, ReadSeek};

pub(crate) struct MappedReader<R, M> {
    inner: R,
    map: M,
    pos: u64,
    size: u64,
    file_len: u64,
    path: PathBuf,
}

impl<R: Read + Seek, M: BlockMap> MappedReader<R, M> {
    pub fn new(inner: R, map: M, size: u64, file_len: u64, path: &Path) -> Self {
        MappedReader {
            inner,
            map,
            pos: 0,
            size,
            file_len,
            path: path.to_path_buf(),
        }
    }
}

impl<R: Read + Seek, M: BlockMap> Read for MappedReader<R, M> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.size - self.pos);
        let run = self.map.lookup(&mut self.inner, self.pos)?;
        let n = match run {
            Run::Zero { len } => {
                let n = want.min(len) as usize;
                buf[..n].fill(0);
                n
            }
            Run::Data { host, len } => {
                let n = want.min(len);
                let end = host.checked_add(n);
                if end.is_none_or(|e| e > self.file_len) {
                    return Err(invalid_data(
                        &self.path,
                        format!(
                            "data for virtual offset {} maps to host offset {host}, past the end of the file ({} bytes)",
                            self.pos, self.file_len
                        ),
                    ));
                }
                let n = n as usize;
                self.inner.seek(SeekFrom::Start(host))?;
                self.inner.read_exact(&mut buf[..n])?;
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek, M: BlockMap> Seek for MappedReader<R, M> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }
}

/// A malformed image found while reading it: an `InvalidData` error that
/// carries a [`PathError`] ("read PATH: msg"), so a caller that wraps it
/// with [`PathError::wrap`] names the path once.
pub(crate) fn invalid_data(path: &Path, msg: String) -> io::Error {
    PathError::new(
        "read",
        path,
        io::Error::new(io::ErrorKind::InvalidData, msg),
    )
    .into()
}

/// A byte range of an image file that holds a header or a table. A table
/// entry that points into one (an L2 table inside the L1 table, a grain
/// on the grain directory, a table that points at itself) is refused:
/// reading on would serve metadata as data or follow a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// What it is, as it reads after "overlaps": "the L1 table".
    pub name: &'static str,
    pub start: u64,
    pub end: u64,
}

impl Meta {
    pub fn new(name: &'static str, start: u64, len: u64) -> Meta {
        Meta {
            name,
            start,
            end: start.saturating_add(len),
        }
    }

    /// The first of `metas` that `len` bytes at `start` overlap.
    pub fn first_hit(metas: &[Meta], start: u64, len: u64) -> Option<Meta> {
        let end = start.saturating_add(len);
        metas
            .iter()
            .find(|m| start < m.end && m.start < end && start < end && m.start < m.end)
            .copied()
    }
}

impl std::fmt::Display for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (bytes {}..{})", self.name, self.start, self.end)
    }
}

/// A field of an on-disk header: its name, first byte and end.
pub(crate) type Field = (&'static str, usize, usize);

/// The error for a header (`what`, e.g. "qcow2 header") of which the file
/// holds only the first `have` bytes: it names the first of `fields` that
/// is not all there.
pub(crate) fn truncated(path: &Path, what: &str, fields: &[Field], have: usize) -> ImageError {
    let (name, start, end) = fields
        .iter()
        .find(|f| f.2 > have)
        .or(fields.last())
        .copied()
        .unwrap_or(("?", 0, 0));
    ImageError::invalid(
        path,
        format!(
            "{what} truncated in field {name} (bytes {start}..{end}): the file holds only {have} bytes of it"
        ),
    )
}

/// Read up to `buf.len()` bytes at `off`, stopping early only at end of file.
pub(crate) fn read_at_most<R: Read + Seek + ?Sized>(
    inner: &mut R,
    off: u64,
    buf: &mut [u8],
) -> io::Result<usize> {
    inner.seek(SeekFrom::Start(off))?;
    let mut n = 0;
    while n < buf.len() {
        match inner.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Read exactly `buf.len()` bytes at `off`.
pub(crate) fn read_exact_at<R: Read + Seek + ?Sized>(
    inner: &mut R,
    off: u64,
    buf: &mut [u8],
) -> io::Result<()> {
    inner.seek(SeekFrom::Start(off))?;
    inner.read_exact(buf)
}

/// Read a table entry of `N` bytes at `off`, after checking that it lies
/// inside the file; `what` names the table in the error.
pub(crate) fn read_entry<const N: usize>(
    inner: &mut dyn ReadSeek,
    off: u64,
    file_len: u64,
    path: &Path,
    what: &str,
) -> io::Result<[u8; N]> {
    if off.checked_add(N as u64).is_none_or(|e| e > file_len) {
        return Err(invalid_data(
            path,
            format!("{what} entry at offset {off} is past the end of the file ({file_len} bytes)"),
        ));
    }
    let mut b = [0u8; N];
    read_exact_at(inner, off, &mut b)?;
    Ok(b)
}

pub(crate) use crate::disk::bytes::{be16, be32, be64, le32, le64};

pub(crate) fn put_be16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
pub(crate) fn put_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
pub(crate) fn put_be64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}
pub(crate) fn put_le16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_le32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_le64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Odd 4 KiB blocks are zeros; even ones map to host block `i / 2`.
    struct Halves;
    impl BlockMap for Halves {
        fn lookup(&mut self, _f: &mut dyn ReadSeek, off: u64) -> io::Result<Run> {
            let blk = off / 4096;
            let rest = 4096 - off % 4096;
            Ok(if blk % 2 == 1 {
                Run::Zero { len: rest }
            } else {
                Run::Data {
                    host: (blk / 2) * 4096 + off % 4096,
                    len: rest,
                }
            })
        }
    }

    #[test]
    fn reads_across_runs_and_clamps_at_size() {
        let host: Vec<u8> = (0..8192u32).map(|i| (i / 4096 + 1) as u8).collect();
        let mut r = MappedReader::new(
            Cursor::new(host),
            Halves,
            3 * 4096 + 10,
            8192,
            Path::new("t"),
        );
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), 3 * 4096 + 10);
        assert!(all[..4096].iter().all(|&b| b == 1));
        assert!(all[4096..8192].iter().all(|&b| b == 0));
        assert!(all[8192..12288].iter().all(|&b| b == 2));
        assert!(all[12288..].iter().all(|&b| b == 0));
        r.seek(SeekFrom::Start(4090)).unwrap();
        let mut b = [9u8; 12];
        r.read_exact(&mut b).unwrap();
        assert_eq!(b, [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
        assert!(r.seek(SeekFrom::Current(-1_000_000)).is_err());
    }

    #[test]
    fn meta_overlaps_are_half_open_and_empty_ranges_hit_nothing() {
        let metas = [Meta::new("the a", 0, 512), Meta::new("the b", 1024, 8)];
        assert_eq!(Meta::first_hit(&metas, 512, 512), None);
        assert_eq!(
            Meta::first_hit(&metas, 511, 1).map(|m| m.name),
            Some("the a")
        );
        assert_eq!(
            Meta::first_hit(&metas, 1031, 100).map(|m| m.name),
            Some("the b")
        );
        assert_eq!(Meta::first_hit(&metas, 100, 0), None);
        assert_eq!(Meta::first_hit(&[Meta::new("none", 50, 0)], 0, 100), None);
        assert_eq!(Meta::first_hit(&metas, u64::MAX, u64::MAX), None);
        assert_eq!(metas[1].to_string(), "the b (bytes 1024..1032)");
    }

    #[test]
    fn data_past_eof_is_an_error_naming_the_path() {
        let mut r = MappedReader::new(
            Cursor::new(vec![1u8; 4096]),
            Halves,
            5 * 4096,
            4096,
            Path::new("img.x"),
        );
        r.seek(SeekFrom::Start(2 * 4096)).unwrap();
        let err = r.read(&mut [0u8; 16]).unwrap_err();
        assert!(err.to_string().contains("img.x"), "{err}");
    }
}
