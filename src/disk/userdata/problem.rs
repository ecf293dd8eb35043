//! What exactly is wrong with an archive, an entry or an entry to write:
//! the typed `problem` of [`super::UserdataError`]. Each renders as the
//! short phrase the error message ends with.

use super::{MAX_ARCHIVE, MAX_EXTENSION_NAME, MAX_FILE};
use std::io;

/// Why the archive as a whole is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveProblem {
    #[error("no end-of-archive marker within the first {MAX_ARCHIVE} bytes")]
    NoMarker,
    #[error(
        "the zero block at byte {zero_at} is followed by a non-zero block; \
         the end-of-archive marker is two zero blocks"
    )]
    ZeroBlockThenData { zero_at: usize },
    #[error("the input ends where {what} should be; no end-of-archive marker")]
    EndsBefore { what: &'static str },
    #[error("the input ends {got} bytes into {what}")]
    EndsInside { got: usize, what: &'static str },
}

/// Why one entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("not a valid tar header ({0})")]
    NotAHeader(HeaderProblem),
    #[error("unknown header format (magic `{magic}`, version `{version}`)")]
    UnknownFormat {
        /// The bytes as printable ASCII escapes.
        magic: String,
        version: String,
    },
    #[error("path `{0}` is not valid UTF-8")]
    PathNotUtf8(
        /// The bytes as printable ASCII escapes.
        String,
    ),
    #[error("type '{}': {why}", .byte.escape_ascii())]
    RefusedType { byte: u8, why: &'static str },
    #[error(transparent)]
    Field(#[from] FieldProblem),
    #[error("a directory with {0} bytes of data")]
    DirectoryWithData(u64),
    #[error("size {0} is over the per-file limit of {MAX_FILE} bytes")]
    OverFileLimit(u64),
    #[error(
        "with {size} data bytes it ends at byte {end}, leaving no room for the \
         end-of-archive marker within the first {MAX_ARCHIVE} bytes"
    )]
    NoRoomForMarker { size: usize, end: usize },
    #[error("a regular file whose name ends with '/'")]
    FileNameEndsWithSlash,
    #[error(transparent)]
    Path(#[from] PathProblem),
    #[error("a regular file with an empty path")]
    FileWithEmptyPath,
    #[error("duplicate path: an earlier entry has the same path")]
    Duplicate,
    #[error("a regular file where earlier entries have a directory")]
    FileOverDirectory,
    #[error("its parent `{0}` is a regular file")]
    ParentIsFile(String),
    #[error("truncated: {got} of {size} data bytes present")]
    TruncatedData { got: usize, size: usize },
    #[error("truncated: the input ends in the padding after {0} data bytes")]
    TruncatedPadding(usize),
}

/// Why a block is not a tar header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderProblem {
    #[error("its checksum field `{0}` is not an octal number")]
    ChecksumNotOctal(
        /// The field as printable ASCII escapes.
        String,
    ),
    #[error("bad header checksum: the header says {stored}, its bytes sum to {unsigned}")]
    BadChecksum { stored: u32, unsigned: u64 },
}

/// Why a numeric header field is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    #[error("{0} field: base-256 (binary) numbers are not supported")]
    Base256(&'static str),
    #[error("{name} field `{text}` is not an octal number")]
    NotOctal { name: &'static str, text: String },
}

/// Why a stored path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    #[error("absolute path")]
    Absolute,
    #[error("control character in path")]
    ControlCharacter,
    #[error("empty path")]
    Empty,
    #[error("empty path component ('//')")]
    EmptyComponent,
    #[error("'.' path component")]
    Dot,
    #[error("'..' path component")]
    DotDot,
}

/// Why the builder will not write an entry.
#[derive(Debug, thiserror::Error)]
pub enum BuildProblem {
    #[error("docker-machine compatibility writes no .b2d entries")]
    ExtensionsInDockerMachineMode,
    #[error(transparent)]
    Name(#[from] NameProblem),
    #[error("extension name given twice")]
    GivenTwice,
    #[error("{0} bytes is over the per-file limit of {MAX_FILE} bytes")]
    OverFileLimit(usize),
    #[error("the archive would exceed {MAX_ARCHIVE} bytes")]
    OverArchiveLimit,
    #[error("path does not fit a ustar header (100-byte name, 155-byte prefix)")]
    PathTooLong,
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Why an extension name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("empty extension name")]
    Empty,
    #[error("extension name is {0} bytes, the limit is {MAX_EXTENSION_NAME}")]
    TooLong(usize),
    #[error("extension name contains '/'")]
    Slash,
    #[error("extension name `{0}` is not a file name")]
    NotAFileName(String),
    #[error("extension name contains a control character")]
    ControlCharacter,
}
