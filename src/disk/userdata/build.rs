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
//!
//! [`tar::Header`]'s setters give exactly these bytes for every field but
//! one, and [`tar::Builder`] writes the blocks, padding and end marker. The
//! exception is the checksum field: `tar` writes seven digits and a NUL
//! (`0012345\0`), Go six digits, a NUL and a space (`012345\0 `), so the
//! sum is `tar`'s and only its encoding is written here.

use super::problem::{BuildProblem, NameProblem};
use super::{
    Compat, Extension, UserdataError, B2D_PREFIX, BLOCK, MAX_ARCHIVE, MAX_EXTENSION_NAME, MAX_FILE,
};
use crate::disk::magic::MAGIC;
use std::collections::HashSet;
use tar::{EntryType, Header};

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
    let mut w = Writer::new();
    w.file(std::str::from_utf8(MAGIC).unwrap_or_default(), 0, MAGIC)?;
    w.dir(".ssh", 0o700)?;
    w.file(".ssh/authorized_keys", 0o644, authorized_keys)?;
    w.file(".ssh/authorized_keys2", 0o644, authorized_keys)?;
    match compat {
        Compat::DockerMachine => {
            if let Some(ext) = extensions.first() {
                return Err(UserdataError::Build {
                    entry: format!("{B2D_PREFIX}/{}", ext.name),
                    problem: BuildProblem::ExtensionsInDockerMachineMode,
                });
            }
        }
        Compat::B2d => {
            w.dir(B2D_PREFIX, 0o700)?;
            let mut seen = HashSet::new();
            for ext in extensions {
                let path = format!("{B2D_PREFIX}/{}", ext.name);
                check_extension_name(&ext.name).map_err(|p| UserdataError::Build {
                    entry: path.clone(),
                    problem: p.into(),
                })?;
                if !seen.insert(ext.name.as_str()) {
                    return Err(UserdataError::Build {
                        entry: path,
                        problem: BuildProblem::GivenTwice,
                    });
                }
                w.file(&path, ext.mode & 0o777, &ext.data)?;
            }
        }
    }
    w.finish()
}

/// Why an extension name is not acceptable, if it is not.
fn check_extension_name(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > MAX_EXTENSION_NAME {
        return Err(NameProblem::TooLong(name.len()));
    }
    if name.contains('/') {
        return Err(NameProblem::Slash);
    }
    if name == "." || name == ".." {
        return Err(NameProblem::NotAFileName(name.to_string()));
    }
    if name.chars().any(char::is_control) {
        return Err(NameProblem::ControlCharacter);
    }
    Ok(())
}

struct Writer {
    out: tar::Builder<Vec<u8>>,
}

impl Writer {
    fn new() -> Self {
        Writer {
            out: tar::Builder::new(Vec::new()),
        }
    }

    fn dir(&mut self, name: &str, mode: u32) -> Result<(), UserdataError> {
        self.append(name, EntryType::Directory, mode, &[])
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<(), UserdataError> {
        if data.len() > MAX_FILE {
            return Err(UserdataError::Build {
                entry: name.into(),
                problem: BuildProblem::OverFileLimit(data.len()),
            });
        }
        self.append(name, EntryType::Regular, mode, data)?;
        if self.out.get_ref().len() + 2 * BLOCK > MAX_ARCHIVE {
            return Err(UserdataError::Build {
                entry: name.into(),
                problem: BuildProblem::OverArchiveLimit,
            });
        }
        Ok(())
    }

    fn append(
        &mut self,
        name: &str,
        kind: EntryType,
        mode: u32,
        data: &[u8],
    ) -> Result<(), UserdataError> {
        let problem = |problem: BuildProblem| UserdataError::Build {
            entry: name.into(),
            problem,
        };
        let h = go_header(name, kind, mode, data.len()).map_err(problem)?;
        self.out.append(&h, data).map_err(|source| {
            problem(BuildProblem::Io {
                what: "cannot write it",
                source,
            })
        })
    }

    fn finish(self) -> Result<Vec<u8>, UserdataError> {
        // Writes the two zero blocks.
        Ok(self.out.into_inner()?)
    }
}

/// One ustar header as Go's writer encodes it.
fn go_header(name: &str, kind: EntryType, mode: u32, size: usize) -> Result<Header, BuildProblem> {
    let mut h = Header::new_ustar();
    // Puts the whole path in the name field when it fits in 100 bytes,
    // else splits it at the last `/` that leaves at most 155 bytes of
    // prefix, as Go does; refuses NULs, `..` and absolute paths.
    h.set_path(name).map_err(|_| BuildProblem::PathTooLong)?;
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size as u64);
    h.set_mtime(0);
    let zero_devices = h.set_device_major(0).and_then(|()| h.set_device_minor(0));
    zero_devices.map_err(|source| BuildProblem::Io {
        what: "cannot write the device fields",
        source,
    })?;
    h.set_cksum();
    let sum = h.cksum().map_err(|source| BuildProblem::Io {
        what: "cannot compute the header checksum",
        source,
    })?;
    // A 512-byte header sums to at most 130560 (0o377000): six digits.
    let digits = format!("{sum:06o}");
    let field = &mut h.as_old_mut().cksum;
    field[..6].copy_from_slice(&digits.as_bytes()[digits.len() - 6..]);
    field[6] = 0;
    field[7] = b' ';
    Ok(h)
}
