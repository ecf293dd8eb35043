//! The userdata archive: a ustar archive at byte 0 of the data disk.
//! STUB — being written; the signatures below are the agreed interface.

use std::io::Read;

/// The archive is read up to its end-of-archive marker, bounded at this size.
pub const MAX_ARCHIVE: usize = 1 << 20;

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
    pub name: String,
    pub mode: u32,
    pub data: Vec<u8>,
}

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

#[derive(Debug, thiserror::Error)]
pub enum UserdataError {
    #[error("userdata archive: {0}")]
    Invalid(String),
    #[error("userdata archive: I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Build an archive (bytes, padded to 512 and ended by two zero blocks).
pub fn build(
    _authorized_keys: &[u8],
    _extensions: &[Extension],
    _compat: Compat,
) -> Result<Vec<u8>, UserdataError> {
    Err(UserdataError::Invalid("not yet implemented".into()))
}

/// Read and validate an archive from the start of `r`.
pub fn read<R: Read>(_r: R) -> Result<Archive, UserdataError> {
    Err(UserdataError::Invalid("not yet implemented".into()))
}

impl Archive {
    /// The entry named exactly by the magic string is the first entry.
    pub fn has_magic_entry(&self) -> bool {
        false
    }
    /// Non-empty, non-comment lines of `.ssh/authorized_keys`.
    pub fn authorized_keys(&self) -> Vec<String> {
        Vec::new()
    }
}
