//! The reader. The input is untrusted (whatever is at byte 0 of a disk), so
//! it is parsed strictly and never read past [`MAX_ARCHIVE`] bytes.
//!
//! Accepted:
//! - ustar (`ustar\0` + `00`), GNU (`ustar  \0`) and v7 (no magic) headers
//!   whose checksum matches (unsigned or signed byte sum);
//! - regular files (typeflag `0`, or `\0` as old writers put it) and
//!   directories (`5`, or `\0` with a trailing `/` as in v7);
//! - the ustar prefix field, joined to the name with `/`;
//! - a leading `./` (stripped) and a trailing `/` (stripped); a lone `./`
//!   directory entry, as `tar -C dir .` writes first, is skipped.
//!
//! Refused, with an error naming the entry: bad checksums, numeric fields
//! that are not plain octal (base-256 included), unknown header magic,
//! absolute paths, empty paths or components, `.` or `..` components,
//! control characters or non-UTF-8 bytes in paths, links, devices, fifos,
//! contiguous files, pax (`x`, `g`) and GNU long-name (`L`, `K`) or other
//! extension headers, directories with data, duplicate paths, a file used as
//! a parent directory, files over [`MAX_FILE`], and anything that would make
//! the archive longer than [`MAX_ARCHIVE`].
//!
//! The end-of-archive marker is two zero blocks. A single zero block
//! followed by the end of the input is refused as truncated: every writer
//! we interoperate with (Go, GNU tar, Python) writes two, and on a disk the
//! block after the archive can always be read. A zero block followed by a
//! non-zero block is refused too, since it would hide entries from readers
//! that stop at the first zero block.

use super::header::{self as h, TYPE_DIR, TYPE_REG, TYPE_REG_OLD};
use super::{Archive, Entry, EntryKind, UserdataError, BLOCK, MAX_ARCHIVE, MAX_FILE};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};

/// Read and validate an archive from the start of `r`.
///
/// Reads exactly up to the end-of-archive marker and never more than
/// [`MAX_ARCHIVE`] bytes, so `r` may be a whole disk.
pub fn read<R: Read>(r: R) -> Result<Archive, UserdataError> {
    Parser {
        r,
        offset: 0,
        entries: Vec::new(),
        index: 0,
        seen: HashMap::new(),
        implicit_dirs: HashSet::new(),
    }
    .run()
}

struct Parser<R> {
    r: R,
    /// Bytes consumed so far.
    offset: usize,
    entries: Vec<Entry>,
    /// Index of the header being parsed (counts skipped `./` entries too).
    index: usize,
    /// Paths of entries accepted so far.
    seen: HashMap<String, EntryKind>,
    /// Ancestors of accepted paths: these must not become files.
    implicit_dirs: HashSet<String>,
}

/// A decoded header that passed every check.
struct Header {
    /// `None` for the skipped `./` root entry.
    path: Option<String>,
    kind: EntryKind,
    mode: u32,
    size: usize,
}

impl<R: Read> Parser<R> {
    fn run(mut self) -> Result<Archive, UserdataError> {
        loop {
            let at = self.offset;
            if at + 2 * BLOCK > MAX_ARCHIVE {
                return Err(archive_err(
                    at,
                    format!("no end-of-archive marker within the first {MAX_ARCHIVE} bytes"),
                ));
            }
            let block = self.block("a header")?;
            if is_zero(&block) {
                let second = self.block("the second block of the end-of-archive marker")?;
                if !is_zero(&second) {
                    return Err(archive_err(
                        at + BLOCK,
                        format!(
                            "the zero block at byte {at} is followed by a non-zero block; \
                             the end-of-archive marker is two zero blocks"
                        ),
                    ));
                }
                return Ok(Archive {
                    entries: self.entries,
                    len: self.offset,
                });
            }
            let hdr = self.header(&block, at)?;
            let data = self.data(&hdr, at)?;
            if let Some(path) = hdr.path {
                self.entries.push(Entry {
                    path,
                    kind: hdr.kind,
                    mode: hdr.mode,
                    data,
                });
            }
            self.index += 1;
        }
    }

    /// Read one 512-byte block; the end of the input is an error.
    fn block(&mut self, what: &str) -> Result<[u8; BLOCK], UserdataError> {
        let mut b = [0u8; BLOCK];
        let got = fill(&mut self.r, &mut b)?;
        if got < BLOCK {
            let problem = if got == 0 {
                format!("the input ends where {what} should be; no end-of-archive marker")
            } else {
                format!("the input ends {got} bytes into {what}")
            };
            return Err(archive_err(self.offset, problem));
        }
        self.offset += BLOCK;
        Ok(b)
    }

    /// Read an entry's data and skip its padding.
    fn data(&mut self, hdr: &Header, at: usize) -> Result<Vec<u8>, UserdataError> {
        let padded = hdr.size.div_ceil(BLOCK) * BLOCK;
        let mut data = vec![0u8; padded];
        let got = fill(&mut self.r, &mut data)?;
        if got < hdr.size {
            return Err(self.entry_err(
                at,
                hdr.path.clone(),
                format!("truncated: {got} of {} data bytes present", hdr.size),
            ));
        }
        if got < padded {
            return Err(self.entry_err(
                at,
                hdr.path.clone(),
                format!("truncated: the input ends in the padding after {got} data bytes"),
            ));
        }
        self.offset += padded;
        data.truncate(hdr.size);
        Ok(data)
    }

    fn entry_err(&self, offset: usize, path: Option<String>, problem: String) -> UserdataError {
        UserdataError::Entry {
            index: self.index,
            offset,
            path,
            problem,
        }
    }

    /// Decode and validate one header block found at byte `at`.
    fn header(&mut self, b: &[u8; BLOCK], at: usize) -> Result<Header, UserdataError> {
        let index = self.index;
        let err = |path: Option<&str>, problem: String| UserdataError::Entry {
            index,
            offset: at,
            path: path.map(str::to_owned),
            problem,
        };
        // Nothing in an unverified header can be trusted, not even its name.
        let stored = octal(&b[h::CHKSUM]).map_err(|p| err(None, format!("checksum field: {p}")))?;
        let (unsigned, signed) = h::checksums(b);
        if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
            return Err(err(
                None,
                format!(
                    "bad header checksum: the header says {stored}, its bytes sum to {unsigned}"
                ),
            ));
        }
        let ustar = match (&b[h::MAGIC], &b[h::VERSION]) {
            (m, v) if m == h::USTAR_MAGIC && v == h::USTAR_VERSION => true,
            (m, v) if m == h::GNU_MAGIC && v == h::GNU_VERSION => false,
            (m, v) if m.iter().chain(v).all(|&c| c == 0) => false,
            (m, v) => {
                return Err(err(
                    None,
                    format!(
                        "unknown header format (magic {:?}, version {:?})",
                        m.escape_ascii().to_string(),
                        v.escape_ascii().to_string()
                    ),
                ))
            }
        };
        let raw = raw_path(b, ustar).map_err(|p| err(None, p))?;
        let shown = Some(raw.as_str());
        let typeflag = b[h::TYPEFLAG];
        let kind = match typeflag {
            TYPE_REG_OLD if raw.ends_with('/') => EntryKind::Dir,
            TYPE_REG | TYPE_REG_OLD => EntryKind::File,
            TYPE_DIR => EntryKind::Dir,
            other => return Err(err(shown, refused_type(other))),
        };
        for (field, name) in [
            (h::MODE, "mode"),
            (h::UID, "uid"),
            (h::GID, "gid"),
            (h::SIZE, "size"),
            (h::MTIME, "mtime"),
            (h::DEVMAJOR, "devmajor"),
            (h::DEVMINOR, "devminor"),
        ] {
            octal(&b[field]).map_err(|p| err(shown, format!("{name} field: {p}")))?;
        }
        let mode = octal(&b[h::MODE]).unwrap_or_default();
        let size = octal(&b[h::SIZE]).unwrap_or_default();
        if kind == EntryKind::Dir && size != 0 {
            return Err(err(shown, format!("a directory with {size} bytes of data")));
        }
        if size > MAX_FILE as u64 {
            return Err(err(
                shown,
                format!("size {size} is over the per-file limit of {MAX_FILE} bytes"),
            ));
        }
        let size = size as usize;
        let end = at + BLOCK + size.div_ceil(BLOCK) * BLOCK;
        if end + 2 * BLOCK > MAX_ARCHIVE {
            return Err(err(
                shown,
                format!(
                    "with {size} data bytes it ends at byte {end}, leaving no room for the \
                     end-of-archive marker within the first {MAX_ARCHIVE} bytes"
                ),
            ));
        }
        if kind == EntryKind::File && raw.ends_with('/') {
            return Err(err(shown, "a regular file whose name ends with '/'".into()));
        }
        let path = clean_path(&raw).map_err(|p| err(shown, p))?;
        let path = match path {
            None if kind == EntryKind::Dir => None,
            None => return Err(err(shown, "a regular file with an empty path".into())),
            Some(p) => {
                self.check_tree(&p, kind)
                    .map_err(|problem| err(shown, problem))?;
                Some(p)
            }
        };
        Ok(Header {
            path,
            kind,
            mode: (mode & 0o777) as u32,
            size,
        })
    }

    /// Refuse duplicates and files that clash with directories, then record
    /// the path.
    fn check_tree(&mut self, path: &str, kind: EntryKind) -> Result<(), String> {
        if self.seen.contains_key(path) {
            return Err("duplicate path: an earlier entry has the same path".into());
        }
        if kind == EntryKind::File && self.implicit_dirs.contains(path) {
            return Err("a regular file where earlier entries have a directory".into());
        }
        let ancestors: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        for a in &ancestors {
            if self.seen.get(*a) == Some(&EntryKind::File) {
                return Err(format!("its parent `{a}` is a regular file"));
            }
        }
        for a in ancestors {
            self.implicit_dirs.insert(a.to_owned());
        }
        self.seen.insert(path.to_owned(), kind);
        Ok(())
    }
}

fn archive_err(offset: usize, problem: String) -> UserdataError {
    UserdataError::Archive { offset, problem }
}

fn is_zero(b: &[u8]) -> bool {
    b.iter().all(|&c| c == 0)
}

/// Read until `buf` is full or the input ends; returns the bytes read.
fn fill<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Parse a numeric header field: optional leading spaces, octal digits,
/// then only NULs or spaces. An empty field is zero.
fn octal(field: &[u8]) -> Result<u64, String> {
    if field.first().is_some_and(|&c| c & 0x80 != 0) {
        return Err("base-256 (binary) numbers are not supported".into());
    }
    let start = field.iter().position(|&c| c != b' ').unwrap_or(field.len());
    let digits = &field[start..];
    let end = digits
        .iter()
        .position(|&c| c == 0 || c == b' ')
        .unwrap_or(digits.len());
    let (num, rest) = digits.split_at(end);
    if let Some(&c) = num.iter().find(|&&c| !(b'0'..=b'7').contains(&c)) {
        return Err(format!("{:?} is not an octal digit", char::from(c)));
    }
    if rest.iter().any(|&c| c != 0 && c != b' ') {
        return Err(format!(
            "unexpected bytes {:?} after the number",
            rest.escape_ascii().to_string()
        ));
    }
    // At most 12 digits (36 bits): no overflow.
    Ok(num
        .iter()
        .fold(0u64, |acc, &c| (acc << 3) | u64::from(c - b'0')))
}

/// The NUL-terminated string at the start of a field.
fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    &field[..end]
}

/// The entry's path as stored: the ustar prefix and the name joined by `/`.
fn raw_path(b: &[u8; BLOCK], ustar: bool) -> Result<String, String> {
    let name = cstr(&b[h::NAME]);
    let prefix = if ustar { cstr(&b[h::PREFIX]) } else { &[] };
    let mut joined = Vec::with_capacity(prefix.len() + 1 + name.len());
    if !prefix.is_empty() {
        joined.extend_from_slice(prefix);
        joined.push(b'/');
    }
    joined.extend_from_slice(name);
    String::from_utf8(joined).map_err(|e| {
        format!(
            "path {:?} is not valid UTF-8",
            e.as_bytes().escape_ascii().to_string()
        )
    })
}

/// Normalise a stored path: strip leading `./` and trailing `/`, then
/// require a clean relative path. `Ok(None)` means the archive root (`./`).
fn clean_path(raw: &str) -> Result<Option<String>, String> {
    if raw.starts_with('/') {
        return Err("absolute path".into());
    }
    if raw.chars().any(char::is_control) {
        return Err("control character in path".into());
    }
    let mut p = raw;
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    let p = p.trim_end_matches('/');
    if p.is_empty() || p == "." {
        return if raw.is_empty() {
            Err("empty path".into())
        } else {
            Ok(None)
        };
    }
    for comp in p.split('/') {
        match comp {
            "" => return Err("empty path component ('//')".into()),
            "." => return Err("'.' path component".into()),
            ".." => return Err("'..' path component".into()),
            _ => {}
        }
    }
    Ok(Some(p.to_owned()))
}

/// Why a header type other than a file or directory is refused.
fn refused_type(flag: u8) -> String {
    let what = match flag {
        b'1' => "hard links are not allowed",
        b'2' => "symbolic links are not allowed",
        b'3' => "character devices are not allowed",
        b'4' => "block devices are not allowed",
        b'6' => "fifos are not allowed",
        b'7' => "contiguous files are not supported",
        b'x' => "pax extended headers are not supported (docker-machine never writes them)",
        b'g' => "pax global headers are not supported (docker-machine never writes them)",
        b'L' | b'K' => {
            "GNU long name/link headers are not supported (docker-machine never writes them)"
        }
        b'S' => "GNU sparse files are not supported",
        _ => "only regular files ('0') and directories ('5') are allowed",
    };
    format!(
        "type {:?}: {what}",
        char::from(flag).escape_default().to_string()
    )
}
