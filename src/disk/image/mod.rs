//! Sparse disk image writers and readers: raw, qcow2, vmdk, vhd.
//! STUB — being written; the signatures below are the agreed interface.

use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Raw,
    Qcow2,
    Vmdk,
    Vhd,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
}

/// Create a sparse image of virtual `size` bytes whose first bytes are `head`.
/// Never overwrites an existing file unless `force`.
pub fn create(
    _path: &Path,
    _format: ImageFormat,
    _size: u64,
    _head: &[u8],
    _force: bool,
) -> Result<(), ImageError> {
    unimplemented!("being written")
}

/// A read-only view of an image's virtual disk.
pub struct DiskImage {
    pub format: ImageFormat,
    pub virtual_size: u64,
    pub reader: Box<dyn ReadSeek>,
}

pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// Open an image, detecting its format from its headers (raw otherwise).
pub fn open(_path: &Path) -> Result<DiskImage, ImageError> {
    unimplemented!("being written")
}
