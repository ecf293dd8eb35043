//! Sparse disk image writers and readers: raw, qcow2, vmdk, vhd.
//!
//! Every writer produces a virtual disk whose first bytes are the caller's
//! `head` (the userdata archive) and which is zero everywhere else. Only
//! non-zero metadata is written; every region that would be all zeros is left
//! as a hole in the host file, so a 2 TiB image costs a few hundred KiB of
//! real blocks (vhd excepted, see [`vhd`]) and a handful of system calls.
//!
//! Writers first build a [`layout::Layout`] in memory — the final file length
//! plus a short list of `(offset, bytes)` writes — and one routine applies it
//! to the file. That keeps the format code free of I/O and unit-testable.
//!
//! Readers map a virtual offset to either a host offset or "zeros" through a
//! small per-format table lookup ([`mapped::BlockMap`]); every table entry is
//! read lazily and bounds-checked against the file length, so header fields
//! never drive large allocations.
//!
//! Size granularity: each format rounds the requested size up to what it can
//! express exactly; [`effective_size`] tells the caller the size that will be
//! written, and [`DiskImage::virtual_size`] reports it back after [`open`].
//! raw and qcow2 round to 512-byte sectors, vmdk to its 64 KiB grain, vhd to
//! a CHS geometry (see [`vhd`]).

use crate::errors::{PathError, WithPath};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

mod layout;
mod mapped;
mod qcow2;
mod raw;
mod vhd;
mod vmdk;

pub use vhd::VHD_MAX_SIZE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Raw,
    Qcow2,
    Vmdk,
    Vhd,
}

impl ImageFormat {
    /// The name `qemu-img` uses for this format (`vpc` for vhd).
    pub fn qemu_name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Vmdk => "vmdk",
            ImageFormat::Vhd => "vpc",
        }
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Vmdk => "vmdk",
            ImageFormat::Vhd => "vhd",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    #[error("{path}: {format} size: {limit}")]
    Size {
        path: PathBuf,
        format: ImageFormat,
        #[source]
        limit: FormatLimit,
    },
    #[error("{path}: {limit}")]
    Layout {
        path: PathBuf,
        #[source]
        limit: FormatLimit,
    },
}

/// What a format cannot hold: the size asked for, or (vmdk) an extent
/// name too long for its descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatLimit {
    #[error("size must be greater than zero")]
    Zero,
    #[error("{0} bytes is too large")]
    TooLarge(u64),
    #[error("{size} bytes exceeds the qcow2 limit of {max} bytes with 64 KiB clusters (L1 table capped at 32 MiB)")]
    Qcow2 { size: u64, max: u64 },
    #[error("{0} bytes exceeds the supported vmdk maximum of {max} bytes (64 TiB)", max = vmdk::VMDK_MAX_SIZE)]
    Vmdk(u64),
    #[error("{0} bytes exceeds the VHD maximum of {VHD_MAX_SIZE} bytes (2040 GiB)")]
    Vhd(u64),
    #[error("vmdk descriptor does not fit in 20 sectors (file name too long?)")]
    VmdkDescriptor,
}

impl ImageError {
    pub(crate) fn invalid(path: &Path, msg: impl Into<String>) -> Self {
        ImageError::Invalid {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
}

/// The virtual size `create` will actually give an image of `format` when
/// asked for `size` bytes (each format rounds up to its own granularity), or
/// an error if the format cannot hold that size.
pub fn effective_size(format: ImageFormat, size: u64) -> Result<u64, FormatLimit> {
    if size == 0 {
        return Err(FormatLimit::Zero);
    }
    match format {
        ImageFormat::Raw => raw::effective_size(size),
        ImageFormat::Qcow2 => qcow2::effective_size(size),
        ImageFormat::Vmdk => vmdk::effective_size(size),
        ImageFormat::Vhd => vhd::effective_size(size),
    }
}

/// Create a sparse image of virtual `size` bytes whose first bytes are `head`.
/// Never overwrites an existing file unless `force`; even then only a regular
/// file is replaced. The size is rounded up as [`effective_size`] says.
pub fn create(
    path: &Path,
    format: ImageFormat,
    size: u64,
    head: &[u8],
    force: bool,
) -> Result<(), ImageError> {
    let size = effective_size(format, size).map_err(|limit| ImageError::Size {
        path: path.to_path_buf(),
        format,
        limit,
    })?;
    if head.len() as u64 > size {
        return Err(ImageError::invalid(
            path,
            format!(
                "head ({} bytes) is larger than the virtual size ({size} bytes)",
                head.len()
            ),
        ));
    }
    let plan = match format {
        ImageFormat::Raw => raw::layout(size, head),
        ImageFormat::Qcow2 => qcow2::layout(size, head),
        ImageFormat::Vmdk => vmdk::layout(size, head, &extent_name(path)),
        ImageFormat::Vhd => vhd::layout(size, head, layout::now_unix()),
    }
    .map_err(|limit| ImageError::Layout {
        path: path.to_path_buf(),
        limit,
    })?;
    layout::write_new(path, &plan, force)
}

/// The file name the vmdk descriptor records for its own extent.
fn extent_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "disk.vmdk".into())
}

/// A read-only view of an image's virtual disk.
pub struct DiskImage {
    pub format: ImageFormat,
    pub virtual_size: u64,
    pub reader: Box<dyn ReadSeek>,
}

impl std::fmt::Debug for DiskImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskImage")
            .field("format", &self.format)
            .field("virtual_size", &self.virtual_size)
            .finish_non_exhaustive()
    }
}

pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// Open an image, detecting its format from its headers (raw otherwise).
/// Only a regular file or a block device is read; anything else is
/// refused at once (see [`open_source`]).
pub fn open(path: &Path) -> Result<DiskImage, ImageError> {
    let mut file = open_source(path)?;
    let len = file
        .seek(SeekFrom::End(0))
        .with_path("seek to the end of", path)?;
    open_reader(file, len, path)
}

/// Open `path` for reading if it is a regular file or a block device.
/// O_NONBLOCK keeps the open of a fifo from waiting for a writer (it is
/// then refused like a directory or a character device); regular files
/// and block devices ignore the flag.
fn open_source(path: &Path) -> Result<File, ImageError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_path("open", path)?;
    let ft = file.metadata().with_path("look at", path)?.file_type();
    if ft.is_file() || ft.is_block_device() {
        return Ok(file);
    }
    Err(ImageError::invalid(
        path,
        format!(
            "is {}; disk images are read from regular files and block devices only",
            layout::kind_of(ft)
        ),
    ))
}

/// Detect the format of `inner` (whose length is `len`) and wrap it in a
/// reader of its virtual disk. `path` is used only in error messages.
pub fn open_reader<R: Read + Seek + 'static>(
    mut inner: R,
    len: u64,
    path: &Path,
) -> Result<DiskImage, ImageError> {
    match detect(&mut inner, len).with_path("read the headers of", path)? {
        ImageFormat::Raw => raw::open(inner, len, path),
        ImageFormat::Qcow2 => qcow2::open(inner, len, path),
        ImageFormat::Vmdk => vmdk::open(inner, len, path),
        ImageFormat::Vhd => vhd::open(inner, len, path),
    }
}

/// Format detection by magic: qcow2 `QFI\xfb` and vmdk `KDMV` at byte 0, a
/// vhd `conectix` footer at the end of the file or its copy at byte 0.
/// Anything else is raw.
pub fn detect<R: Read + Seek>(inner: &mut R, len: u64) -> io::Result<ImageFormat> {
    let mut head = [0u8; 8];
    let n = mapped::read_at_most(inner, 0, &mut head)?;
    if n >= 4 && head[..4] == qcow2::MAGIC {
        return Ok(ImageFormat::Qcow2);
    }
    if n >= 4 && head[..4] == vmdk::MAGIC {
        return Ok(ImageFormat::Vmdk);
    }
    if n == 8 && head == vhd::COOKIE {
        return Ok(ImageFormat::Vhd);
    }
    if len >= 1024 {
        let mut tail = [0u8; 8];
        if mapped::read_at_most(inner, len - 512, &mut tail)? == 8 && tail == vhd::COOKIE {
            return Ok(ImageFormat::Vhd);
        }
    }
    Ok(ImageFormat::Raw)
}
