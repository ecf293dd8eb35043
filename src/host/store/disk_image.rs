//! Data disk images as b2d writes and reads them: the userdata archive
//! built from keys and `.b2d/` entries and written at byte 0 of a sparse
//! image of any supported format, and the inspection of an image or device
//! (magic, archive, partitions, filesystems). Shared by machine creation
//! and the `b2d disk` verb.

use crate::disk::image::{self, DiskImage, ImageError, ImageFormat};
use crate::disk::probe::{self, Report};
use crate::disk::size::Human;
use crate::disk::userdata::{self, Compat, EntryKind, UserdataError};
use crate::disk::{magic, userdata::Extension};
use crate::errors::PathError;
use serde::Serialize;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The smallest disk b2d will create: the smallest the guest agent will
/// format, so a created disk is never one the guest leaves alone.
pub const MIN_DISK: u64 = crate::disk::layout::MIN_FORMAT_SIZE;

#[derive(Debug, thiserror::Error)]
pub enum DiskImageError {
    #[error("{path}: size {size} is below the minimum of {min} (b2d formats nothing smaller): ask for {min} or more")]
    TooSmall {
        path: PathBuf,
        size: String,
        min: String,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{path}: {source}")]
    Userdata {
        path: PathBuf,
        #[source]
        source: UserdataError,
    },
    #[error(transparent)]
    Io(#[from] PathError),
}

/// A data disk to write.
#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub path: PathBuf,
    pub size: u64,
    pub format: ImageFormat,
    /// The `authorized_keys` content.
    pub authorized_keys: Vec<u8>,
    /// `.b2d/` extension files (ignored with `Compat::DockerMachine`).
    pub extensions: Vec<Extension>,
    pub compat: Compat,
    pub force: bool,
}

/// Build the userdata archive and write the image.
pub fn create(spec: &CreateSpec) -> Result<Inspection, DiskImageError> {
    if spec.size < MIN_DISK {
        return Err(DiskImageError::TooSmall {
            path: spec.path.clone(),
            size: Human(spec.size).to_string(),
            min: Human(MIN_DISK).to_string(),
        });
    }
    let extensions: &[Extension] = match spec.compat {
        Compat::DockerMachine => &[],
        Compat::B2d => &spec.extensions,
    };
    let archive =
        userdata::build(&spec.authorized_keys, extensions, spec.compat).map_err(|source| {
            DiskImageError::Userdata {
                path: spec.path.clone(),
                source,
            }
        })?;
    image::create(&spec.path, spec.format, spec.size, &archive, spec.force)?;
    inspect(&spec.path)
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryInfo {
    pub path: String,
    pub kind: EntryKind,
    pub mode: String,
    pub size: usize,
}

/// Everything an inspection finds; also the JSON shape of `b2d disk inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub path: PathBuf,
    pub format: ImageFormat,
    pub virtual_size: u64,
    /// The magic string is at byte 0 of the virtual disk.
    pub magic: bool,
    /// Bytes of the userdata archive, end marker included.
    pub archive_len: Option<usize>,
    /// Why the archive at byte 0 was refused, when the magic is there.
    pub archive_error: Option<String>,
    pub entries: Vec<EntryInfo>,
    pub authorized_keys: Vec<String>,
    pub table: Option<probe::TableKind>,
    pub partitions: Vec<probe::Partition>,
    pub filesystems: Vec<probe::Filesystem>,
    pub blank: bool,
}

/// Inspect an image of any supported format (or a block device).
pub fn inspect(path: &Path) -> Result<Inspection, DiskImageError> {
    inspect_image(image::open(path)?, path)
}

/// [`inspect`] of an image already open; `path` names it in the report
/// and in errors. (The fuzz targets of the image readers run this.)
pub fn inspect_image(mut img: DiskImage, path: &Path) -> Result<Inspection, DiskImageError> {
    // The image readers' own errors already name the path: wrap keeps
    // those as they are.
    let io_err = |source| DiskImageError::Io(PathError::wrap("read", path, source));
    let has_magic = magic::has_magic(&mut img.reader).map_err(io_err)?;
    let (mut archive_len, mut archive_error, mut entries, mut keys) = (None, None, vec![], vec![]);
    if has_magic {
        img.reader.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let bounded = (&mut img.reader).take(userdata::MAX_ARCHIVE as u64 + 1024);
        match userdata::read(bounded) {
            Ok(a) => {
                archive_len = Some(a.len);
                keys = a.authorized_keys();
                entries = a
                    .entries
                    .iter()
                    .map(|e| EntryInfo {
                        path: e.path.clone(),
                        kind: e.kind,
                        mode: format!("{:04o}", e.mode),
                        size: e.data.len(),
                    })
                    .collect();
            }
            Err(e) => archive_error = Some(e.to_string()),
        }
    }
    let Report {
        table,
        partitions,
        filesystems,
        blank,
        ..
    } = probe::probe(&mut img.reader, img.virtual_size).map_err(io_err)?;
    Ok(Inspection {
        path: path.to_path_buf(),
        format: img.format,
        virtual_size: img.virtual_size,
        magic: has_magic,
        archive_len,
        archive_error,
        entries,
        authorized_keys: keys,
        table,
        partitions,
        filesystems,
        blank,
    })
}
