//! What a detector reports: a signature found at the start of a region,
//! before the prober places it on the device.

use super::{Filesystem, FsKind};

/// A signature found at the start of a region, before it is placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub kind: FsKind,
    pub label: Option<String>,
    pub uuid: Option<String>,
    pub version: Option<String>,
}

impl Found {
    /// Place the signature at `offset` of the device, in `partition`.
    pub fn at(self, offset: u64, partition: Option<u32>) -> Filesystem {
        Filesystem {
            offset,
            partition,
            kind: self.kind,
            label: self.label,
            uuid: self.uuid,
            version: self.version,
        }
    }
}
