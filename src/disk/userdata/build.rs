//! The writer. It reproduces what Go's `archive/tar` emits for
//! docker-machine's headers (Go 1.10 and later pick the ustar format for
//! them):
//!
//! - numeric fields in octal, zero-padded to the field width minus one and
//!   NUL-terminated (`mode` `0000700\0`, `size` 11 digits + NUL, `mtime` 0);
//! - `devmajor`/`devminor` written as octal zero too (`0000000\0`), unlike
//!   GNU tar and recent Python, which leave them NUL for non-devices;
//! - typeflag `0` for files (Go promotes its zero-value `\0` to `0`) and `5`
//!   for directories, with no trailing slash on the directory name;
//! - magic `ustar\0`, version `00`, empty uname, gname, linkname and prefix;
//! - checksum: six octal digits, NUL, space;
//! - data padded with zeros to 512 bytes; two zero blocks at the end.

use super::header::{self as h, TYPE_DIR, TYPE_REG};
use super::{
    Compat, Extension, UserdataError, B2D_PREFIX, BLOCK, MAX_ARCHIVE, MAX_EXTENSION_NAME, MAX_FILE,
};
use crate::disk::magic::MAGIC;
use std::collections::HashSet;

/// Build an archive (bytes, padded to 512 and ended by two zero blocks).
///
/// `authorized_keys` is written verbatim as both `.ssh/authorized_keys` and
/// `.ssh/authorized_keys2`, exactly as docker-machine copies the `.pub` file.
/// With [`Compat::DockerMachine`] `extensions` must be empty; with
/// [`Compat::B2d`] a `.b2d` directory and one file per extension follow.
pub fn build(
    authorized_keys: &[u8],
    extensions: &[Extension],
    compat: Compat,
) -> Result<Vec<u8>, UserdataError> {
    let mut w = Writer::default();
    w.file(std::str::from_utf8(MAGIC).unwrap_or_default(), 0, MAGIC)?;
    w.dir(".ssh", 0o700)?;
    w.file(".ssh/authorized_keys", 0o644, authorized_keys)?;
    w.file(".ssh/authorized_keys2", 0o644, authorized_keys)?;
    match compat {
        Compat::DockerMachine => {
            if let Some(ext) = extensions.first() {
                return Err(UserdataError::Build {
                    entry: format!("{B2D_PREFIX}/{}", ext.name),
                    problem: "docker-machine compatibility writes no .b2d entries".into(),
                });
            }
        }
        Compat::B2d => {
            w.dir(B2D_PREFIX, 0o700)?;
            let mut seen = HashSet::new();
            for ext in extensions {
                let path = format!("{B2D_PREFIX}/{}", ext.name);
                check_extension_name(&ext.name).map_err(|problem| UserdataError::Build {
                    entry: path.clone(),
                    problem,
                })?;
                if !seen.insert(ext.name.as_str()) {
                    return Err(UserdataError::Build {
                        entry: path,
                        problem: "extension name given twice".into(),
                    });
                }
                w.file(&path, ext.mode & 0o777, &ext.data)?;
            }
        }
    }
    w.finish()
}

/// Why an extension name is not acceptable, if it is not.
fn check_extension_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty extension name".into());
    }
    if name.len() > MAX_EXTENSION_NAME {
        return Err(format!(
            "extension name is {} bytes, the limit is {MAX_EXTENSION_NAME}",
            name.len()
        ));
    }
    if name.contains('/') {
        return Err("extension name contains '/'".into());
    }
    if name == "." || name == ".." {
        return Err(format!("extension name `{name}` is not a file name"));
    }
    if name.chars().any(char::is_control) {
        return Err("extension name contains a control character".into());
    }
    Ok(())
}

#[derive(Default)]
struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn dir(&mut self, name: &str, mode: u32) -> Result<(), UserdataError> {
        let block = header(name, TYPE_DIR, mode, 0)?;
        self.out.extend_from_slice(&block);
        Ok(())
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<(), UserdataError> {
        if data.len() > MAX_FILE {
            return Err(UserdataError::Build {
                entry: name.into(),
                problem: format!(
                    "{} bytes is over the per-file limit of {MAX_FILE} bytes",
                    data.len()
                ),
            });
        }
        let block = header(name, TYPE_REG, mode, data.len())?;
        self.out.extend_from_slice(&block);
        self.out.extend_from_slice(data);
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.out.resize(self.out.len() + pad, 0);
        if self.out.len() + 2 * BLOCK > MAX_ARCHIVE {
            return Err(UserdataError::Build {
                entry: name.into(),
                problem: format!("the archive would exceed {MAX_ARCHIVE} bytes"),
            });
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<u8>, UserdataError> {
        self.out.resize(self.out.len() + 2 * BLOCK, 0);
        Ok(self.out)
    }
}

/// Encode one ustar header the way Go's writer does.
fn header(name: &str, typeflag: u8, mode: u32, size: usize) -> Result<[u8; BLOCK], UserdataError> {
    let (prefix, name_part) = split_name(name).ok_or_else(|| UserdataError::Build {
        entry: name.into(),
        problem: "path does not fit a ustar header (100-byte name, 155-byte prefix)".into(),
    })?;
    let mut b = [0u8; BLOCK];
    put_str(&mut b[h::NAME], name_part);
    put_octal(&mut b[h::MODE], u64::from(mode));
    put_octal(&mut b[h::UID], 0);
    put_octal(&mut b[h::GID], 0);
    put_octal(&mut b[h::SIZE], size as u64);
    put_octal(&mut b[h::MTIME], 0);
    b[h::TYPEFLAG] = typeflag;
    // linkname, uname and gname stay empty (all NUL).
    b[h::MAGIC].copy_from_slice(h::USTAR_MAGIC);
    b[h::VERSION].copy_from_slice(h::USTAR_VERSION);
    put_octal(&mut b[h::DEVMAJOR], 0);
    put_octal(&mut b[h::DEVMINOR], 0);
    put_str(&mut b[h::PREFIX], prefix);
    let (sum, _) = h::checksums(&b);
    put_octal(&mut b[h::CHKSUM.start..h::CHKSUM.end - 1], sum);
    b[h::CHKSUM.end - 1] = b' ';
    Ok(b)
}

/// Split a path into (prefix, name) as ustar allows: the whole path in the
/// name field when it fits in 100 bytes, else split at a `/` so that the
/// prefix is at most 155 bytes and the name at most 100.
fn split_name(path: &str) -> Option<(&str, &str)> {
    let nul_free = !path.as_bytes().contains(&0);
    if !nul_free || path.is_empty() {
        return None;
    }
    if path.len() <= h::NAME.len() {
        return Some(("", path));
    }
    let limit = path.len().min(h::PREFIX.len() + 1);
    let cut = path.as_bytes()[..limit].iter().rposition(|&c| c == b'/')?;
    let (prefix, rest) = (&path[..cut], &path[cut + 1..]);
    (cut > 0 && !rest.is_empty() && rest.len() <= h::NAME.len()).then_some((prefix, rest))
}

/// Copy `s` into the field; the rest of the field stays NUL.
fn put_str(field: &mut [u8], s: &str) {
    field[..s.len()].copy_from_slice(s.as_bytes());
}

/// Octal digits zero-padded to the field width minus one, then a NUL.
/// All values written here fit (sizes are capped far below 8 GiB).
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}
