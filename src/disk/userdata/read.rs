//! The reader. The input is untrusted (whatever is at byte 0 of a disk), so
//! it is parsed strictly and never read past [`MAX_ARCHIVE`] bytes: the
//! input is wrapped in a [`Read::take`] of that size, and every header is
//! checked before its data is read.
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
//! Refused, with an error naming the entry: blocks that are not tar headers
//! (bad checksum or a checksum field that is not a number), numeric fields
//! that are not octal (base-256 included), unknown header magic, absolute
//! paths, empty paths or components, `.` or `..` components, control
//! characters or non-UTF-8 bytes in paths, links, devices, fifos,
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
//!
//! # What the `tar` crate does here, and what stays hand-written
//!
//! Each header block is a [`tar::Header`]: it tells ustar from GNU, joins the
//! ustar prefix to the name, gives the entry type and decodes every numeric
//! field. The policy layer on top of it (which types, which paths, which
//! sizes) is this module's.
//!
//! The framing — reading 512-byte blocks, an entry's data and padding, the
//! end-of-archive marker — is written here rather than left to
//! [`tar::Archive`], because `Archive` cannot keep the rules above:
//! - it accepts only the unsigned header checksum (GNU tar and Python also
//!   accept the signed one that old writers produced);
//! - it takes the end of the input where a header should be as a clean end,
//!   and stops at the first zero block, so a missing or half marker, and a
//!   zero block hiding later entries, would be accepted, and the archive's
//!   length (which the journal copies) would not be known;
//! - it reports a truncated block as "failed to read entire block", without
//!   saying where, and decodes base-256 numbers instead of refusing them.

use super::problem::{ArchiveProblem, EntryProblem, FieldProblem, HeaderProblem, PathProblem};
use super::{Archive, Entry, EntryKind, UserdataError, BLOCK, MAX_ARCHIVE, MAX_FILE};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use tar::{EntryType, Header};

/// Read and validate an archive from the start of `r`.
///
/// Reads exactly up to the end-of-archive marker and never more than
/// [`MAX_ARCHIVE`] bytes, so `r` may be a whole disk.
pub fn read<R: Read>(r: R) -> Result<Archive, UserdataError> {
    Parser {
        r: r.take(MAX_ARCHIVE as u64),
        offset: 0,
        entries: Vec::new(),
        index: 0,
        seen: HashMap::new(),
        implicit_dirs: HashSet::new(),
    }
    .run()
}

struct Parser<R> {
    /// The input, unable to yield more than [`MAX_ARCHIVE`] bytes.
    r: io::Take<R>,
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
struct Checked {
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
            // Unreachable through the size checks below; kept so that the
            // message stays clear should those ever change.
            if at + 2 * BLOCK > MAX_ARCHIVE {
                return Err(archive_err(at, ArchiveProblem::NoMarker));
            }
            let block = self.block("a header")?;
            if is_zero(block.as_bytes()) {
                let second = self.block("the second block of the end-of-archive marker")?;
                if !is_zero(second.as_bytes()) {
                    return Err(archive_err(
                        at + BLOCK,
                        ArchiveProblem::ZeroBlockThenData { zero_at: at },
                    ));
                }
                return Ok(Archive {
                    entries: self.entries,
                    len: self.offset,
                });
            }
            let hdr = self.check(&block, at)?;
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
    fn block(&mut self, what: &'static str) -> Result<Header, UserdataError> {
        let mut b = Header::new_old();
        let got = fill(&mut self.r, b.as_mut_bytes())?;
        if got < BLOCK {
            let problem = if got == 0 {
                ArchiveProblem::EndsBefore { what }
            } else {
                ArchiveProblem::EndsInside { got, what }
            };
            return Err(archive_err(self.offset, problem));
        }
        self.offset += BLOCK;
        Ok(b)
    }

    /// Read an entry's data and skip its padding.
    fn data(&mut self, hdr: &Checked, at: usize) -> Result<Vec<u8>, UserdataError> {
        let padded = hdr.size.div_ceil(BLOCK) * BLOCK;
        let mut data = vec![0u8; padded];
        let got = fill(&mut self.r, &mut data)?;
        if got < hdr.size {
            return Err(self.entry_err(
                at,
                hdr.path.clone(),
                EntryProblem::TruncatedData {
                    got,
                    size: hdr.size,
                },
            ));
        }
        if got < padded {
            return Err(self.entry_err(at, hdr.path.clone(), EntryProblem::TruncatedPadding(got)));
        }
        self.offset += padded;
        data.truncate(hdr.size);
        Ok(data)
    }

    fn entry_err(
        &self,
        offset: usize,
        path: Option<String>,
        problem: EntryProblem,
    ) -> UserdataError {
        UserdataError::Entry {
            index: self.index,
            offset,
            path,
            problem,
        }
    }

    /// Decode and validate one header block found at byte `at`.
    fn check(&mut self, h: &Header, at: usize) -> Result<Checked, UserdataError> {
        let index = self.index;
        let err = |path: Option<&str>, problem: EntryProblem| UserdataError::Entry {
            index,
            offset: at,
            path: path.map(str::to_owned),
            problem,
        };
        // Nothing in an unverified header can be trusted, not even its name.
        verify_checksum(h).map_err(|p| err(None, EntryProblem::NotAHeader(p)))?;
        let old = h.as_old();
        // In ustar and GNU headers the magic and version fields start the
        // area a v7 header leaves as padding.
        let (magic, version) = old.pad[..8].split_at(6);
        let v7 = magic.iter().chain(version).all(|&c| c == 0);
        if h.as_ustar().is_none() && h.as_gnu().is_none() && !v7 {
            return Err(err(
                None,
                EntryProblem::UnknownFormat {
                    magic: magic.escape_ascii().to_string(),
                    version: version.escape_ascii().to_string(),
                },
            ));
        }
        // `tar` joins the prefix field to the name for ustar headers only
        // (GNU keeps timestamps there).
        let raw = String::from_utf8(h.path_bytes().into_owned()).map_err(|e| {
            err(
                None,
                EntryProblem::PathNotUtf8(e.as_bytes().escape_ascii().to_string()),
            )
        })?;
        let shown = Some(raw.as_str());
        let kind = match h.entry_type() {
            // v7 writers mark directories only by the trailing slash.
            EntryType::Regular if old.linkflag[0] == 0 && raw.ends_with('/') => EntryKind::Dir,
            EntryType::Regular => EntryKind::File,
            EntryType::Directory => EntryKind::Dir,
            other => return Err(err(shown, refused_type(other))),
        };
        let (mode, size) = numeric_fields(h).map_err(|p| err(shown, p.into()))?;
        if kind == EntryKind::Dir && size != 0 {
            return Err(err(shown, EntryProblem::DirectoryWithData(size)));
        }
        if size > MAX_FILE as u64 {
            return Err(err(shown, EntryProblem::OverFileLimit(size)));
        }
        let size = size as usize;
        let end = at + BLOCK + size.div_ceil(BLOCK) * BLOCK;
        if end + 2 * BLOCK > MAX_ARCHIVE {
            return Err(err(shown, EntryProblem::NoRoomForMarker { size, end }));
        }
        if kind == EntryKind::File && raw.ends_with('/') {
            return Err(err(shown, EntryProblem::FileNameEndsWithSlash));
        }
        let path = clean_path(&raw).map_err(|p| err(shown, p.into()))?;
        let path = match path {
            None if kind == EntryKind::Dir => None,
            None => return Err(err(shown, EntryProblem::FileWithEmptyPath)),
            Some(p) => {
                self.check_tree(&p, kind)
                    .map_err(|problem| err(shown, problem))?;
                Some(p)
            }
        };
        Ok(Checked {
            path,
            kind,
            mode: (mode & 0o777) as u32,
            size,
        })
    }

    /// Refuse duplicates and files that clash with directories, then record
    /// the path.
    fn check_tree(&mut self, path: &str, kind: EntryKind) -> Result<(), EntryProblem> {
        if self.seen.contains_key(path) {
            return Err(EntryProblem::Duplicate);
        }
        if kind == EntryKind::File && self.implicit_dirs.contains(path) {
            return Err(EntryProblem::FileOverDirectory);
        }
        let ancestors: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        for a in &ancestors {
            if self.seen.get(*a) == Some(&EntryKind::File) {
                return Err(EntryProblem::ParentIsFile(a.to_string()));
            }
        }
        for a in ancestors {
            self.implicit_dirs.insert(a.to_owned());
        }
        self.seen.insert(path.to_owned(), kind);
        Ok(())
    }
}

/// The header sums with the checksum field counted as eight spaces:
/// (unsigned, signed). POSIX asks for the unsigned one; some old writers
/// used signed bytes, and common readers accept either. (`tar` computes
/// only the unsigned one, and keeps it private.)
pub(crate) fn checksums(h: &Header) -> (u64, i64) {
    let field = &h.as_old().cksum;
    let spaces = 8 * u64::from(b' ');
    let unsigned: u64 = h.as_bytes().iter().map(|&b| u64::from(b)).sum();
    let signed: i64 = h.as_bytes().iter().map(|&b| i64::from(b as i8)).sum();
    let field_u: u64 = field.iter().map(|&b| u64::from(b)).sum();
    let field_s: i64 = field.iter().map(|&b| i64::from(b as i8)).sum();
    (
        unsigned - field_u + spaces,
        signed - field_s + spaces as i64,
    )
}

/// Why a block is not a tar header, if it is not.
fn verify_checksum(h: &Header) -> Result<(), HeaderProblem> {
    let stored = h
        .cksum()
        .map_err(|_| HeaderProblem::ChecksumNotOctal(text(&h.as_old().cksum)))?;
    let (unsigned, signed) = checksums(h);
    if u64::from(stored) == unsigned || i64::from(stored) == signed {
        return Ok(());
    }
    Err(HeaderProblem::BadChecksum { stored, unsigned })
}

/// Decode every numeric field with `tar`, so that a malformed one is
/// refused even where b2d ignores its value (uid, gid, mtime, devices).
/// Returns (mode, size).
fn numeric_fields(h: &Header) -> Result<(u64, u64), FieldProblem> {
    let old = h.as_old();
    let mode = number("mode", &old.mode, || h.mode().map(u64::from))?;
    number("uid", &old.uid, || h.uid())?;
    number("gid", &old.gid, || h.gid())?;
    let size = number("size", &old.size, || h.entry_size())?;
    number("mtime", &old.mtime, || h.mtime())?;
    // v7 headers have no device fields.
    let devices = match (h.as_ustar(), h.as_gnu()) {
        (Some(u), _) => Some((u.dev_major, u.dev_minor)),
        (None, Some(g)) => Some((g.dev_major, g.dev_minor)),
        (None, None) => None,
    };
    if let Some((major, minor)) = devices {
        let dev = |v: io::Result<Option<u32>>| v.map(|d| u64::from(d.unwrap_or(0)));
        number("devmajor", &major, || dev(h.device_major()))?;
        number("devminor", &minor, || dev(h.device_minor()))?;
    }
    Ok((mode, size))
}

/// One numeric field, decoded by `decode` (a `tar::Header` accessor) after
/// the two rules `tar` does not have: an empty field (NULs or spaces, as
/// GNU tar and Python leave the device fields of files) is zero, and
/// base-256 numbers, which no writer uses for a small archive, are refused.
fn number(
    name: &'static str,
    raw: &[u8],
    decode: impl FnOnce() -> io::Result<u64>,
) -> Result<u64, FieldProblem> {
    if raw.first().is_some_and(|&c| c & 0x80 != 0) {
        return Err(FieldProblem::Base256(name));
    }
    if raw.iter().take_while(|&&c| c != 0).all(|&c| c == b' ') {
        return Ok(0);
    }
    decode().map_err(|_| FieldProblem::NotOctal {
        name,
        text: text(raw),
    })
}

/// A field's bytes up to the first NUL, printable.
fn text(field: &[u8]) -> String {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    field[..end].escape_ascii().to_string()
}

fn archive_err(offset: usize, problem: ArchiveProblem) -> UserdataError {
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

/// Normalise a stored path: strip leading `./` and trailing `/`, then
/// require a clean relative path. `Ok(None)` means the archive root (`./`).
fn clean_path(raw: &str) -> Result<Option<String>, PathProblem> {
    if raw.starts_with('/') {
        return Err(PathProblem::Absolute);
    }
    if raw.chars().any(char::is_control) {
        return Err(PathProblem::ControlCharacter);
    }
    let mut p = raw;
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    let p = p.trim_end_matches('/');
    if p.is_empty() || p == "." {
        return if raw.is_empty() {
            Err(PathProblem::Empty)
        } else {
            Ok(None)
        };
    }
    for comp in p.split('/') {
        match comp {
            "" => return Err(PathProblem::EmptyComponent),
            "." => return Err(PathProblem::Dot),
            ".." => return Err(PathProblem::DotDot),
            _ => {}
        }
    }
    Ok(Some(p.to_owned()))
}

/// Why a header type other than a file or directory is refused.
fn refused_type(t: EntryType) -> EntryProblem {
    let why = match t {
        EntryType::Link => "hard links are not allowed",
        EntryType::Symlink => "symbolic links are not allowed",
        EntryType::Char => "character devices are not allowed",
        EntryType::Block => "block devices are not allowed",
        EntryType::Fifo => "fifos are not allowed",
        EntryType::Continuous => "contiguous files are not supported",
        EntryType::XHeader => {
            "pax extended headers are not supported (docker-machine never writes them)"
        }
        EntryType::XGlobalHeader => {
            "pax global headers are not supported (docker-machine never writes them)"
        }
        EntryType::GNULongName | EntryType::GNULongLink => {
            "GNU long name/link headers are not supported (docker-machine never writes them)"
        }
        EntryType::GNUSparse => "GNU sparse files are not supported",
        _ => "only regular files ('0') and directories ('5') are allowed",
    };
    EntryProblem::RefusedType {
        byte: t.as_byte(),
        why,
    }
}
