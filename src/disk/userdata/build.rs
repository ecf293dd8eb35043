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
                problem: format!(
                    "{} bytes is over the per-file limit of {MAX_FILE} bytes",
                    data.len()
                ),
            });
        }
        self.append(name, EntryType::Regular, mode, data)?;
        if self.out.get_ref().len() + 2 * BLOCK > MAX_ARCHIVE {
            return Err(UserdataError::Build {
                entry: name.into(),
                problem: format!("the archive would exceed {MAX_ARCHIVE} bytes"),
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
        let problem = |problem: String| UserdataError::Build {
            entry: name.into(),
            problem,
        };
        let h = go_header(name, kind, mode, data.len()).map_err(problem)?;
        self.out
            .append(&h, data)
            .map_err(|e| problem(format!("cannot write it: {e}")))
    }

    fn finish(self) -> Result<Vec<u8>, UserdataError> {
        // Writes the two zero blocks.
        Ok(self.out.into_inner()?)
    }
}

/// One ustar header as Go's writer encodes it.
fn go_header(name: &str, kind: EntryType, mode: u32, size: usize) -> Result<Header, String> {
    let mut h = Header::new_ustar();
    // Puts the whole path in the name field when it fits in 100 bytes,
    // else splits it at the last `/` that leaves at most 155 bytes of
    // prefix, as Go does; refuses NULs, `..` and absolute paths.
    h.set_path(name).map_err(|_| {
        "path does not fit a ustar header (100-byte name, 155-byte prefix)".to_string()
    })?;
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size as u64);
    h.set_mtime(0);
    let zero_devices = h.set_device_major(0).and_then(|()| h.set_device_minor(0));
    zero_devices.map_err(|e| format!("cannot write the device fields: {e}"))?;
    h.set_cksum();
    let sum = h
        .cksum()
        .map_err(|e| format!("cannot compute the header checksum: {e}"))?;
    // A 512-byte header sums to at most 130560 (0o377000): six digits.
    let digits = format!("{sum:06o}");
    let field = &mut h.as_old_mut().cksum;
    field[..6].copy_from_slice(&digits.as_bytes()[digits.len() - 6..]);
    field[6] = 0;
    field[7] = b' ';
    Ok(h)
}
