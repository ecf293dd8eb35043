//! The userdata archive: a ustar archive at byte 0 of the data disk.
//!
//! - [`build`] writes it byte for byte as docker-machine's `MakeDiskImage`
//!   (Go `archive/tar`) does, optionally followed by b2d's `.b2d/` entries.
//! - [`read`] parses it from untrusted bytes: it stops at the end-of-archive
//!   marker, never looks past [`MAX_ARCHIVE`], and refuses anything that is
//!   not a plain relative file or directory.
//! - [`install`] and [`install_b2d`] put a validated archive on the guest's
//!   filesystem without following symlinks or leaving the target directory.
//!
//! # On-disk layout written by [`build`]
//!
//! | # | name                    | type | mode | content          |
//! |---|-------------------------|------|------|------------------|
//! | 0 | the magic string        | `0`  | 0    | the magic string |
//! | 1 | `.ssh`                  | `5`  | 0700 |                  |
//! | 2 | `.ssh/authorized_keys`  | `0`  | 0644 | the keys         |
//! | 3 | `.ssh/authorized_keys2` | `0`  | 0644 | the keys         |
//! | 4 | `.b2d` (b2d only)       | `5`  | 0700 |                  |
//! | 5…| `.b2d/<name>` (b2d only)| `0`  | ext. | extension data   |
//!
//! followed by two zero blocks.

use super::magic::MAGIC;

mod build;
mod install;
mod problem;
mod read;

#[cfg(test)]
mod build_tests;
#[cfg(test)]
mod install_tests;
#[cfg(test)]
mod read_tests;

pub use build::build;
pub use install::{install, install_b2d, InstallReport, B2D_DIR_MODE, B2D_FILE_MODE};
pub use problem::{
    ArchiveProblem, BuildProblem, EntryProblem, FieldProblem, HeaderProblem, NameProblem,
    PathProblem,
};
pub use read::read;

/// The archive is read up to its end-of-archive marker, bounded at this size.
pub const MAX_ARCHIVE: usize = 1 << 20;

/// Largest content of a single file entry the reader accepts.
pub const MAX_FILE: usize = 256 << 10;

/// Longest extension name (the part after `.b2d/`).
pub const MAX_EXTENSION_NAME: usize = 100;

/// Directory of the b2d extension entries inside the archive.
pub const B2D_PREFIX: &str = ".b2d";

/// Size of one tar block.
pub(crate) const BLOCK: usize = 512;

/// Which entries to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compat {
    /// Exactly docker-machine's four entries (magic, `.ssh`, `authorized_keys`, `authorized_keys2`).
    DockerMachine,
    /// docker-machine's four entries followed by `.b2d/` extension entries.
    B2d,
}

/// A file under `.b2d/` (name relative to `.b2d/`, e.g. `hostname`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// File name inside `.b2d/`: no `/`, not `.` or `..`, 1..=100 bytes.
    pub name: String,
    /// Permission bits; anything above 0o777 is dropped when written.
    pub mode: u32,
    pub data: Vec<u8>,
}

/// What an entry is. The reader produces nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
}

/// One validated entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path without a trailing slash, e.g. `.ssh/authorized_keys`.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits after masking.
    pub mode: u32,
    pub data: Vec<u8>,
}

/// A validated archive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Archive {
    pub entries: Vec<Entry>,
    /// Bytes from the start up to and including the end-of-archive marker.
    pub len: usize,
}

/// Everything that can go wrong building, reading or installing userdata.
/// Each message names the entry or path it is about.
#[derive(Debug, thiserror::Error)]
pub enum UserdataError {
    /// The builder was handed something it cannot or will not write.
    #[error("userdata archive: cannot write entry `{entry}`: {problem}")]
    Build {
        entry: String,
        problem: BuildProblem,
    },
    /// A header or its data is malformed or not allowed.
    #[error("userdata archive: entry #{index} at byte {offset}{}: {problem}", path_suffix(.path))]
    Entry {
        /// 0-based position of the entry in the archive.
        index: usize,
        /// Byte offset of the entry's header.
        offset: usize,
        /// The entry's path, when it could be decoded.
        path: Option<String>,
        problem: EntryProblem,
    },
    /// The archive as a whole is malformed (truncated, too large, no end marker).
    #[error("userdata archive: at byte {offset}: {problem}")]
    Archive {
        offset: usize,
        problem: ArchiveProblem,
    },
    /// Installing refused a path (symlink, not a directory, ...).
    #[error("userdata install: {}: {problem}", .path.display())]
    Unsafe {
        path: std::path::PathBuf,
        problem: &'static str,
    },
    /// A system call failed while installing.
    #[error("userdata install: {0}")]
    InstallIo(#[from] crate::errors::PathError),
    #[error("userdata archive: I/O: {0}")]
    Io(#[from] std::io::Error),
}

fn path_suffix(path: &Option<String>) -> String {
    match path {
        Some(p) => format!(" (`{}`)", p.escape_debug()),
        None => String::new(),
    }
}

impl Archive {
    /// True iff entry 0 is a regular file named exactly the magic string
    /// whose content is exactly the magic string.
    pub fn has_magic_entry(&self) -> bool {
        self.entries.first().is_some_and(|e| {
            e.kind == EntryKind::File && e.path.as_bytes() == MAGIC && e.data == MAGIC
        })
    }

    /// Non-empty, non-comment lines of `.ssh/authorized_keys`, trimmed.
    pub fn authorized_keys(&self) -> Vec<String> {
        self.file(".ssh/authorized_keys")
            .map(|e| {
                String::from_utf8_lossy(&e.data)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The regular files under `.b2d/`, in archive order.
    pub fn b2d_files(&self) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.kind == EntryKind::File && is_b2d_path(&e.path))
            .collect()
    }

    /// The regular file at exactly `path`, if any.
    pub fn file(&self, path: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.kind == EntryKind::File && e.path == path)
    }
}

/// True for `.b2d` itself and anything below it.
pub(crate) fn is_b2d_path(path: &str) -> bool {
    path == B2D_PREFIX
        || path
            .strip_prefix(B2D_PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}
