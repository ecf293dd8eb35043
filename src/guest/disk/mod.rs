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

use crate::disk::{layout, probe};
use crate::sys::Sys;
use classify::Verdict;
use serde::Serialize;
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
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) use PrepareError as DiskError;

impl PrepareError {
    pub(crate) fn io(path: &Path, what: &'static str, source: std::io::Error) -> Self {
        PrepareError::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    }
}

/// Run an external tool through the seam; a non-zero exit is an error
/// carrying the command line and its stderr.
pub(crate) fn run_tool(
    sys: &dyn Sys,
    prog: &str,
    args: &[&str],
) -> Result<crate::sys::CmdOutput, DiskError> {
    let out = sys
        .run(prog, args)
        .map_err(|e| DiskError::Failed(format!("{prog} {}: {e}", args.join(" "))))?;
    if !out.success() {
        return Err(DiskError::Failed(format!(
            "{prog} {} exited with {:?}: {}",
            args.join(" "),
            out.code,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
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
            .map_err(|e| DiskError::Failed(format!("scanning disks: {e}")))?
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
        let mut f =
            std::fs::File::open(&path).map_err(|e| DiskError::io(&path, "open for probing", e))?;
        let report = probe::probe(&mut f, size).map_err(|e| DiskError::io(&path, "probe", e))?;
        let verdict = classify::classify(&mut f, size, &report)
            .map_err(|e| DiskError::io(&path, "classify", e))?;
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
        log::info!("{}: {} bytes: {}", path.display(), size, short(&verdict));
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

fn short(v: &Verdict) -> String {
    match v {
        Verdict::Data { partition } => format!("b2d data filesystem (partition {partition:?})"),
        Verdict::Resume { .. } => "half-formatted by b2d: will finish".into(),
        Verdict::Magic { .. } => "magic disk: will format".into(),
        Verdict::Blank => "blank: will format".into(),
        Verdict::Foreign(why) => format!("not ours, left alone: {why}"),
    }
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
                short(&c.verdict)
            ));
        } else {
            notes.push(format!("{}: {}", c.path.display(), short(&c.verdict)));
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
            let grew = partition.is_some() && !opts.no_format && grow(sys, &c.path)?;
            if partition.is_some() {
                let mut parts = c.parts.clone();
                if grew {
                    // Re-read the grown table for partition 1's new length.
                    let mut f = std::fs::File::open(&c.path)
                        .map_err(|e| DiskError::io(&c.path, "open", e))?;
                    let r = probe::probe(&mut f, c.size)
                        .map_err(|e| DiskError::io(&c.path, "probe", e))?;
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
            let f = format::format(sys, &c.path, c.size, &archive, &opts.target)?;
            (Action::Resumed, f.data, f.swap, false)
        }
        Verdict::Magic { archive } => {
            let f = format::format(sys, &c.path, c.size, &archive, &opts.target)?;
            (Action::Formatted, f.data, f.swap, false)
        }
        Verdict::Blank => {
            let f = format::format(sys, &c.path, c.size, &[], &opts.target)?;
            (Action::Formatted, f.data, f.swap, false)
        }
        Verdict::Foreign(_) => unreachable!("foreign disks are filtered above"),
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
    let out = sys
        .run("e2fsck", &["-p", &dev.to_string_lossy()])
        .map_err(|e| DiskError::Failed(format!("e2fsck -p {}: {e}", dev.display())))?;
    match out.code {
        Some(0) => {}
        Some(1) | Some(2) => log::info!("e2fsck fixed {}", dev.display()),
        code => log::error!(
            "e2fsck -p {} exited with {code:?}; mounting anyway: {}",
            dev.display(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
    }
    Ok(())
}

/// Grow b2d's GPT to an enlarged disk; true when partition 1 grew.
fn grow(sys: &dyn Sys, disk: &Path) -> Result<bool, DiskError> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(disk)
        .map_err(|e| DiskError::io(disk, "open to check size", e))?;
    let grew = gpt::grow(&mut f).map_err(|e| DiskError::io(disk, "grow GPT", e))?;
    if grew {
        f.sync_all().map_err(|e| DiskError::io(disk, "fsync", e))?;
        drop(f);
        log::info!("{}: disk grew; partition 1 extended", disk.display());
        sys.reread_partitions(disk)
            .map_err(|e| DiskError::io(disk, "re-read partition table", e))?;
    }
    Ok(grew)
}
