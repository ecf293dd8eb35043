//! The data disk: scan, choose, crash-safe format or resume, fsck, grow,
//! mount, persistence binds and userdata install (DESIGN.md, "Which disk"
//! and "Crash safety"). `b2d-init prepare-disk` runs exactly this.

pub mod classify;
pub mod failpoint;
pub mod format;
pub mod gpt;
pub mod persist;
pub mod scan;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_members;
#[cfg(test)]
mod tests_secrets;

use crate::disk::userdata::UserdataError;
use crate::disk::{layout, probe};
use crate::errors::{PathError, WithPath};
use crate::sys::{run_tool, run_tool_accepting, Sys, ToolError};
use classify::Verdict;
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

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
    /// `b2d.noformat`: only mount an existing data filesystem; never
    /// format, resume or grow anything.
    pub no_format: bool,
    /// The format step to die at: only `b2d-init prepare-disk
    /// --failpoint` sets one (see [`failpoint`]); a boot never does.
    pub failpoint: Option<failpoint::Failpoint>,
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

/// What went wrong preparing the data disk; every message names the
/// disk, path or command.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Io(#[from] PathError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("scanning disks: {0}")]
    Scan(#[source] PathError),
    /// The archive to format with does not read back (journal or disk).
    #[error("{}: {source}", disk.display())]
    Archive {
        disk: PathBuf,
        #[source]
        source: Box<UserdataError>,
    },
    #[error("installing {what} into {}: {source}", dir.display())]
    Install {
        what: &'static str,
        dir: PathBuf,
        #[source]
        source: Box<UserdataError>,
    },
    #[error("{}: {size} bytes is too small to format", disk.display())]
    TooSmall { disk: PathBuf, size: u64 },
    #[error(
        "{} did not appear within {secs}s after re-reading the partition table",
        path.display()
    )]
    NoPartitionNode { path: PathBuf, secs: u64 },
    /// Never reached: foreign disks are not chosen; kept so that a
    /// mistake there is an error, not a panic in PID 1.
    #[error("{}: not ours, left alone: {why}", disk.display())]
    Foreign { disk: PathBuf, why: String },
}

pub(crate) use PrepareError as DiskError;

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Mounted => "mounted",
            Action::Formatted => "formatted",
            Action::Resumed => "resumed",
            Action::None => "none",
        })
    }
}

/// One line for the console: what was done, with which nodes.
impl fmt::Display for PrepareOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let (Some(part), Some(mnt)) = (show(&self.partition), show(&self.mountpoint)) else {
            return f.write_str("no data disk in use: running from RAM");
        };
        let disk = show(&self.device).unwrap_or_else(|| part.clone());
        match self.action {
            Action::Formatted => write!(f, "{disk} formatted; ")?,
            Action::Resumed => write!(f, "{disk}: interrupted format finished; ")?,
            Action::Mounted | Action::None => {}
        }
        write!(f, "{part} mounted on {mnt}")?;
        if let Some(swap) = show(&self.swap) {
            write!(f, ", swap partition {swap}")?;
        }
        Ok(())
    }
}

struct Candidate {
    path: PathBuf,
    size: u64,
    verdict: Verdict,
    swap: Option<u32>,
    /// (number, byte start, byte length) of the partitions the probe saw.
    parts: Vec<(u32, u64, u64)>,
}

fn candidates(
    sys: &dyn Sys,
    opts: &PrepareOptions,
    notes: &mut Vec<String>,
) -> Result<Vec<Candidate>, DiskError> {
    let disks: Vec<PathBuf> = if opts.devices.is_empty() {
        scan::scan(&opts.sys_root, &opts.dev_root)
            .map_err(DiskError::Scan)?
            .into_iter()
            .map(|d| d.path)
            .collect()
    } else {
        opts.devices.clone()
    };
    let mut out = Vec::new();
    for path in disks {
        let size = match sys.device_size(&path) {
            Ok(s) => s,
            Err(e) => {
                notes.push(format!("{}: skipped: {e}", path.display()));
                continue;
            }
        };
        let mut f = std::fs::File::open(&path).with_path("open for probing", &path)?;
        let report = probe::probe(&mut f, size).with_path("probe", &path)?;
        let verdict = classify::classify(&mut f, size, &report).with_path("classify", &path)?;
        let swap = report
            .filesystems
            .iter()
            .find(|fs| {
                fs.kind == probe::FsKind::Swap && fs.label.as_deref() == Some(layout::SWAP_LABEL)
            })
            .and_then(|fs| fs.partition);
        let parts = report
            .partitions
            .iter()
            .map(|p| (p.number, p.start, p.size))
            .collect();
        log::info!("{}: {} bytes: {verdict}", path.display(), size);
        out.push(Candidate {
            path,
            size,
            verdict,
            swap,
            parts,
        });
    }
    Ok(out)
}

/// Run the disk part of the boot.
pub fn prepare(sys: &dyn Sys, opts: &PrepareOptions) -> Result<PrepareOutcome, PrepareError> {
    let mut notes = Vec::new();
    let mut cands = candidates(sys, opts, &mut notes)?;
    // Best rule first; among equals, the largest disk.
    cands.sort_by_key(|c| {
        (
            c.verdict.rank().unwrap_or(u8::MAX),
            std::cmp::Reverse(c.size),
        )
    });
    let mut chosen = None;
    for c in cands {
        let needs_write = !matches!(c.verdict, Verdict::Data { .. });
        if chosen.is_none() && c.verdict.rank().is_some() && !(opts.no_format && needs_write) {
            chosen = Some(c);
        } else if opts.no_format && needs_write && c.verdict.rank().is_some() {
            notes.push(format!(
                "{}: {}, but b2d.noformat: left alone",
                c.path.display(),
                c.verdict
            ));
        } else {
            notes.push(format!("{}: {}", c.path.display(), c.verdict));
        }
    }
    let Some(c) = chosen else {
        log::warn!("no usable data disk; running from RAM");
        return Ok(PrepareOutcome {
            action: Action::None,
            device: None,
            partition: None,
            mountpoint: None,
            swap: None,
            notes,
        });
    };
    for n in &notes {
        log::info!("also seen: {n}");
    }
    let (action, data, swap, grew) = match c.verdict {
        Verdict::Data { partition } => {
            if partition.is_some() && !opts.no_format {
                format::zero_stale_journal(&c.path, &c.parts, c.swap)?;
            }
            let grew = partition.is_some() && !opts.no_format && grow(sys, &c.path)?;
            if partition.is_some() {
                let mut parts = c.parts.clone();
                if grew {
                    // Re-read the grown table for partition 1's new length.
                    let mut f = std::fs::File::open(&c.path).with_path("open", &c.path)?;
                    let r = probe::probe(&mut f, c.size).with_path("probe", &c.path)?;
                    parts = r
                        .partitions
                        .iter()
                        .map(|p| (p.number, p.start, p.size))
                        .collect();
                }
                format::ensure_partitions(sys, &c.path, &parts)?;
            }
            let data = partition.map_or(c.path.clone(), |n| format::partition_path(&c.path, n));
            let swap = c.swap.map(|n| format::partition_path(&c.path, n));
            fsck(sys, &data)?;
            (Action::Mounted, data, swap, grew)
        }
        Verdict::Resume { archive } => {
            log::warn!(
                "{}: finishing a format that was interrupted",
                c.path.display()
            );
            let f = format::format(sys, &c.path, c.size, &archive, &opts.target, opts.failpoint)?;
            (Action::Resumed, f.data, f.swap, false)
        }
        Verdict::Magic { archive } => {
            let f = format::format(sys, &c.path, c.size, &archive, &opts.target, opts.failpoint)?;
            (Action::Formatted, f.data, f.swap, false)
        }
        Verdict::Blank => {
            let f = format::format(sys, &c.path, c.size, &[], &opts.target, opts.failpoint)?;
            (Action::Formatted, f.data, f.swap, false)
        }
        Verdict::Foreign(why) => return Err(DiskError::Foreign { disk: c.path, why }),
    };
    let mnt = persist::mountpoint(&opts.target, &data);
    persist::mount_data(sys, &data, &mnt)?;
    if grew {
        run_tool(sys, "resize2fs", &[&data.to_string_lossy()])?;
    }
    persist::bind(sys, &mnt, &opts.target)?;
    Ok(PrepareOutcome {
        action,
        device: Some(c.path),
        partition: Some(data),
        mountpoint: Some(mnt),
        swap,
        notes,
    })
}

/// `e2fsck -p`; exit 1 (fixed) and 2 (fixed, reboot advised) are fine;
/// worse is logged loudly and the mount still attempted, as boot2docker did.
fn fsck(sys: &dyn Sys, dev: &Path) -> Result<(), DiskError> {
    match run_tool_accepting(sys, "e2fsck", &["-p", &dev.to_string_lossy()], &[0, 1, 2]) {
        Ok(out) if out.code == Some(0) => {}
        Ok(_) => log::info!("e2fsck fixed {}", dev.display()),
        Err(e @ ToolError::Failed { .. }) => log::error!("{e}; mounting anyway"),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Grow b2d's GPT to an enlarged disk; true when partition 1 grew.
fn grow(sys: &dyn Sys, disk: &Path) -> Result<bool, DiskError> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(disk)
        .with_path("open to check the size of", disk)?;
    let grew = gpt::grow(&mut f).with_path("grow the GPT on", disk)?;
    if grew {
        f.sync_all().with_path("fsync", disk)?;
        drop(f);
        log::info!("{}: disk grew; partition 1 extended", disk.display());
        format::reread_partitions(sys, disk).with_path("re-read the partition table of", disk)?;
    }
    Ok(grew)
}
