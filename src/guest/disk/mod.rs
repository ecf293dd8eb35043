//! The data disk: scan, choose, crash-safe format or resume, fsck, mount,
//! persistence binds and userdata install. STUB — being written; the
//! interface below is agreed.

use crate::sys::Sys;
use serde::Serialize;
use std::path::PathBuf;

/// Where `prepare` looks and writes. Every root is injectable for tests.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Candidate whole disks; empty means scan `sys_root/block`.
    pub devices: Vec<PathBuf>,
    /// Root under which `mnt/<partition>`, the persisted directories and
    /// `home/docker` live: `/` at boot.
    pub target: PathBuf,
    /// `/sys` (for the scan).
    pub sys_root: PathBuf,
    /// `/dev` (device nodes named by the scan).
    pub dev_root: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Mounted,
    Formatted,
    Resumed,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrepareOutcome {
    pub action: Action,
    /// Whole disk used, e.g. `/dev/sda`.
    pub device: Option<PathBuf>,
    /// Data partition, e.g. `/dev/sda1`.
    pub partition: Option<PathBuf>,
    /// Where it is mounted, e.g. `/mnt/sda1`.
    pub mountpoint: Option<PathBuf>,
    /// Swap partition to enable at boot (prepare does not enable it).
    pub swap: Option<PathBuf>,
    /// Disks seen and left alone, and why.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("{0}")]
    Failed(String),
}

/// Run the disk part of the boot.
pub fn prepare(_sys: &dyn Sys, _opts: &PrepareOptions) -> Result<PrepareOutcome, PrepareError> {
    Err(PrepareError::Failed("not yet implemented".into()))
}
