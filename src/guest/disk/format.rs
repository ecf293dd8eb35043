//! The crash-safe format sequence. Every step is idempotent and the
//! sequence restarts from the GPT on resume, so a power cut at any instant
//! leaves a disk the next boot either finishes (journal) or mounts
//! (committed label):
//!
//! 1. journal: the validated archive, checksummed, into the swap region;
//! 2. GPT (primary, backup, then protective MBR), re-read by the kernel;
//! 3. mke2fs partition 1 with the *formatting* label;
//! 4. mount it, create the persisted directories, store userdata.tar
//!    atomically, install the keys and `.b2d/`, sync, unmount;
//! 5. mkswap partition 2;
//! 6. commit: relabel partition 1 `boot2docker-data`;
//! 7. zero the journal (header and archive) and what the GPT left of the
//!    original archive at byte 0: both copies carry private keys.

use super::failpoint::{self, Failpoint};
use super::{persist, DiskError};
use crate::disk::journal;
use crate::disk::layout::{self, partition_name, DATA_LABEL, FORMATTING_LABEL, SWAP_LABEL};
use crate::disk::userdata;
use crate::errors::WithPath;
use crate::sys::{run_tool, Sys};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Partition device nodes of a formatted disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formatted {
    pub data: PathBuf,
    pub swap: Option<PathBuf>,
}

/// The device node of partition `n` of the whole-disk node `disk`.
pub fn partition_path(disk: &Path, n: u32) -> PathBuf {
    let name = disk
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    disk.with_file_name(partition_name(&name, n))
}

/// Open a disk for writing; for a block device, exclusively (EBUSY if any
/// of it is mounted or in use).
fn open_rw(disk: &Path) -> Result<File, DiskError> {
    let is_blk = std::fs::metadata(disk)
        .map(|m| m.file_type().is_block_device())
        .unwrap_or(false);
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    if is_blk {
        o.custom_flags(libc::O_EXCL);
    }
    Ok(o.open(disk).with_path("open for formatting", disk)?)
}

/// EBUSY, also under the path context the kernel seam wraps it in.
fn busy(e: &std::io::Error) -> bool {
    crate::errors::os_error(e) == Some(libc::EBUSY)
}

/// BLKRRPART, tried again for about 2 s while the kernel says the disk is
/// busy (a scan or probe of its own still holds it: seen on an AHCI disk
/// under TCG right after the GPT was written).
pub(super) fn reread_partitions(sys: &dyn Sys, disk: &Path) -> std::io::Result<()> {
    let mut wait = Duration::from_millis(50);
    for _ in 1..REREAD_TRIES {
        match sys.reread_partitions(disk) {
            Err(e) if busy(&e) => {
                log::info!("{}: BLKRRPART: {e}; trying again", disk.display());
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(400));
            }
            r => return r,
        }
    }
    sys.reread_partitions(disk)
}

const REREAD_TRIES: usize = 8;

/// Make sure partition nodes exist for `parts` (number, byte start, byte
/// length). A kernel that parses GPT creates them on BLKRRPART within
/// moments; one built without GPT support (minimal VM kernels) does not,
/// and is told about each partition with BLKPG, as `partx -a` does.
pub fn ensure_partitions(
    sys: &dyn Sys,
    disk: &Path,
    parts: &[(u32, u64, u64)],
) -> Result<(), DiskError> {
    let missing = |n: u32| !partition_path(disk, n).exists();
    let t0 = Instant::now();
    while parts.iter().any(|p| missing(p.0)) && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for &(n, start, len) in parts.iter().filter(|p| missing(p.0)) {
        log::info!(
            "{}: kernel did not list partition {n}; adding it with BLKPG",
            disk.display()
        );
        if let Err(e) = sys.add_partition(disk, n, start, len) {
            log::warn!("{}: BLKPG add partition {n}: {e}", disk.display());
        }
    }
    for &(n, ..) in parts {
        wait_for(&partition_path(disk, n), Duration::from_secs(10))?;
    }
    Ok(())
}

fn wait_for(path: &Path, timeout: Duration) -> Result<(), DiskError> {
    let t0 = Instant::now();
    while !path.exists() {
        if t0.elapsed() > timeout {
            return Err(DiskError::NoPartitionNode {
                path: path.to_path_buf(),
                secs: timeout.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Format `disk` (`size` bytes) with `archive` (may be empty for a blank
/// disk) and leave it committed and unmounted. `target` is the root under
/// which `mnt/<partition>` is used for populating. `fail_at`: the point to
/// die at, for the power-cut tests (see [`failpoint`]); a boot passes none.
pub fn format(
    sys: &dyn Sys,
    disk: &Path,
    size: u64,
    archive: &[u8],
    target: &Path,
    fail_at: Option<Failpoint>,
) -> Result<Formatted, DiskError> {
    let parsed = if archive.is_empty() {
        None
    } else {
        Some(
            userdata::read(archive).map_err(|source| DiskError::Archive {
                disk: disk.to_path_buf(),
                source: Box::new(source),
            })?,
        )
    };
    let layout = layout::layout(size).ok_or_else(|| DiskError::TooSmall {
        disk: disk.to_path_buf(),
        size,
    })?;
    let data = partition_path(disk, 1);
    let swap = layout.swap.as_ref().map(|_| partition_path(disk, 2));

    let mut dev = open_rw(disk)?;
    log::info!("{}: writing the format journal", disk.display());
    journal::write(&mut dev, archive, size, &mut |f: &mut File| f.sync_all())
        .with_path("write the format journal on", disk)?;
    failpoint::hit(fail_at, Failpoint::Journal);

    log::info!("{}: writing GPT ({layout})", disk.display());
    super::gpt::write(&mut dev, &layout).with_path("write the GPT on", disk)?;
    dev.sync_all().with_path("fsync", disk)?;
    drop(dev);
    match reread_partitions(sys, disk) {
        Ok(()) => {}
        // ensure_partitions below tells the kernel each partition itself.
        Err(e) if busy(&e) => log::warn!(
            "{}: the kernel kept the disk busy ({e}); adding the partitions with BLKPG",
            disk.display()
        ),
        Err(e) => Err::<(), _>(e).with_path("re-read the partition table of", disk)?,
    }
    let mut parts = vec![(1, layout.data.start, layout.data.end - layout.data.start)];
    if let Some(s) = &layout.swap {
        parts.push((2, s.start, s.end - s.start));
    }
    ensure_partitions(sys, disk, &parts)?;
    failpoint::hit(fail_at, Failpoint::Gpt);

    let data_s = data.to_string_lossy();
    log::info!("{}: making the data filesystem", data.display());
    run_tool(
        sys,
        "mke2fs",
        &[
            "-q",
            "-F",
            "-t",
            "ext4",
            "-L",
            FORMATTING_LABEL,
            "-i",
            "8192",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1",
            &data_s,
        ],
    )?;
    failpoint::hit(fail_at, Failpoint::Mkfs);

    let mnt = persist::mountpoint(target, &data);
    log::info!("{}: storing the userdata", data.display());
    persist::mount_data(sys, &data, &mnt)?;
    let populated = persist::populate(sys, &mnt, archive, parsed.as_ref());
    let unmounted = sys
        .umount(&mnt, false)
        .with_path("unmount after populating", &mnt);
    populated?;
    unmounted?;
    failpoint::hit(fail_at, Failpoint::Populate);

    if let Some(s) = &swap {
        log::info!("{}: making swap", s.display());
        run_tool(sys, "mkswap", &["-L", SWAP_LABEL, &s.to_string_lossy()])?;
    }
    failpoint::hit(fail_at, Failpoint::Mkswap);

    log::info!("{}: committing the format", data.display());
    run_tool(sys, "tune2fs", &["-L", DATA_LABEL, &data_s])?;
    sys.sync();
    failpoint::hit(fail_at, Failpoint::Commit);

    let mut dev = open_rw(disk)?;
    journal::clear(&mut dev, &mut |f: &mut File| f.sync_all())
        .with_path("zero the format journal on", disk)?;
    scrub_original_archive(&mut dev, archive.len())
        .and_then(|()| dev.sync_all())
        .with_path("zero the rest of the original userdata on", disk)?;
    log::info!("{}: formatted; data on {}", disk.display(), data.display());
    Ok(Formatted { data, swap })
}

/// On a committed b2d disk about to be mounted, zero a format journal that
/// a power cut between the commit and the journal's zeroing left behind.
/// Only a journal that verifies, in b2d's own place for it (inside the swap
/// partition `swap`, or before every partition of a swapless disk), is
/// touched. `parts` are (number, byte start, byte length). A disk in use
/// (a partition mounted or swapped on) is left alone. True when zeroed.
pub fn zero_stale_journal(
    disk: &Path,
    parts: &[(u32, u64, u64)],
    swap: Option<u32>,
) -> Result<bool, DiskError> {
    let region = layout::JOURNAL_OFFSET..layout::JOURNAL_OFFSET + journal::REGION;
    let in_place = match swap {
        Some(n) => parts
            .iter()
            .any(|&(p, start, len)| p == n && start <= region.start && region.end <= start + len),
        None => parts.iter().all(|&(_, start, _)| start >= region.end),
    };
    let mut f = File::open(disk).with_path("open to look for a format journal on", disk)?;
    if !in_place
        || journal::read(&mut f)
            .with_path("read the format journal on", disk)?
            .is_none()
    {
        return Ok(false);
    }
    drop(f);
    let mut dev = match open_rw(disk) {
        Ok(d) => d,
        Err(DiskError::Io(e)) if busy(&e.source) => {
            log::warn!(
                "{}: a format journal is left but the disk is in use: {e}",
                disk.display()
            );
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    log::info!(
        "{}: zeroing the format journal an interrupted commit left",
        disk.display()
    );
    journal::clear(&mut dev, &mut |f: &mut File| f.sync_all())
        .with_path("zero the format journal on", disk)?;
    Ok(true)
}

/// Zero what is left of the userdata archive that was at byte 0 (a magic
/// disk's): the GPT covers its first [`layout::PRIMARY_GPT_END`] bytes, a
/// longer archive goes on into the gap before the first partition.
fn scrub_original_archive(dev: &mut File, len: usize) -> std::io::Result<()> {
    let end = (len as u64).min(layout::FIRST_PARTITION_MIN);
    match end.checked_sub(layout::PRIMARY_GPT_END) {
        Some(n) if n > 0 => journal::zero(dev, layout::PRIMARY_GPT_END, n),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    #[test]
    fn a_busy_disk_is_asked_again_other_errors_are_not() {
        let disk = Path::new("/dev/sda");
        let sys = FakeSys::new();
        sys.fail_on_errno("reread_partitions /dev/sda", libc::EBUSY);
        let e = reread_partitions(&sys, disk).unwrap_err();
        assert!(busy(&e), "{e}");
        assert_eq!(sys.calls().len(), REREAD_TRIES, "{:?}", sys.calls());

        let sys = FakeSys::new();
        sys.fail_on_errno("reread_partitions /dev/sda", libc::ENODEV);
        assert!(reread_partitions(&sys, disk).is_err());
        assert_eq!(sys.calls().len(), 1, "ENODEV is final");

        let sys = FakeSys::new();
        reread_partitions(&sys, disk).unwrap();
        assert_eq!(sys.calls(), ["reread_partitions /dev/sda"]);
    }

    #[test]
    fn partition_paths_follow_kernel_names() {
        assert_eq!(
            partition_path(Path::new("/dev/sda"), 1),
            PathBuf::from("/dev/sda1")
        );
        assert_eq!(
            partition_path(Path::new("/dev/loop3"), 2),
            PathBuf::from("/dev/loop3p2")
        );
        assert_eq!(
            partition_path(Path::new("/dev/nvme0n1"), 1),
            PathBuf::from("/dev/nvme0n1p1")
        );
    }
}
