//! Guest RAM as a memfd the host can read and fill.
//!
//! Every machine's RAM is a shared memfd (virtiofsd maps it too). A
//! suspend migrates with QEMU's `x-ignore-shared`, so the migration
//! stream holds the devices only, and copies the RAM itself out of
//! `/proc/<qemu>/fd` into a sparse file: holes and zero pages are not
//! written. A resume fills a new memfd from that file, hands it to QEMU
//! as `mem-path=/proc/self/fd/N`, and loads the small device stream.
//! QEMU never touches a page the guest did not use, so loading is as
//! fast as copying the used pages, and the host's memory after a resume
//! is what the guest uses, not all of it.
//!
//! The checksum covers every non-zero page and its offset, so damage
//! anywhere, a page gone to zeros included, changes it. Copies run on
//! two threads, each reading, checking and checksumming every other
//! chunk.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The memory backend's id on the QEMU command line.
pub const ID: &str = "mem0";
/// The unit of the copy: a guest page.
const PAGE: usize = 4096;
/// How much is read at a time.
const CHUNK: usize = 1 << 20;
/// A zero page to compare with (slice equality is a memcmp, fast even
/// in a debug build).
static ZERO: [u8; PAGE] = [0; PAGE];

/// QEMU arguments for `memory_mib` of RAM: a memfd QEMU makes itself, or
/// (a resume) the memfd `fd` this process passes it, already filled.
pub fn qemu_args(memory_mib: u32, fd: Option<RawFd>) -> Vec<String> {
    let backend = match fd {
        None => format!("memory-backend-memfd,id={ID},size={memory_mib}M,share=on"),
        Some(fd) => format!(
            "memory-backend-file,id={ID},size={memory_mib}M,share=on,mem-path=/proc/self/fd/{fd}"
        ),
    };
    vec![
        "-object".into(),
        backend,
        "-machine".into(),
        format!("memory-backend={ID}"),
    ]
}

/// A new memfd of `size` bytes (close-on-exec: [`inherit`] opens it to
/// the one child that needs it).
pub fn memfd(size: u64) -> io::Result<File> {
    // SAFETY: a NUL-terminated name and valid flags.
    let fd = unsafe { libc::memfd_create(c"b2d-ram".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd is new and owned by nothing else.
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(size)?;
    Ok(f)
}

/// Let `fd` survive the exec of the child being spawned. For
/// `CommandExt::pre_exec`: it only calls fcntl, which is async-signal-safe.
pub fn inherit(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd number; no memory is touched.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The guest RAM of QEMU `pid`: its memfd of `size` bytes, as a path
/// under `/proc/<pid>/fd`.
pub fn find(pid: u32, size: u64) -> Option<PathBuf> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let mut fds: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    fds.sort();
    fds.into_iter().find(|p| {
        let is_memfd =
            std::fs::read_link(p).is_ok_and(|l| l.to_string_lossy().starts_with("/memfd:"));
        is_memfd && std::fs::metadata(p).is_ok_and(|md| md.len() == size)
    })
}

/// The data ranges of `f` (SEEK_DATA/SEEK_HOLE), within `len`.
fn data_ranges(f: &File, len: u64) -> io::Result<Vec<(u64, u64)>> {
    let fd = f.as_raw_fd();
    let seek = |off: u64, whence: libc::c_int| -> io::Result<Option<u64>> {
        // SAFETY: lseek on an owned fd.
        let r = unsafe { libc::lseek(fd, off as libc::off_t, whence) };
        if r >= 0 {
            return Ok(Some(r as u64));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENXIO) => Ok(None),
            _ => Err(e),
        }
    };
    let mut out = Vec::new();
    let mut off = 0;
    while off < len {
        let Some(start) = seek(off, libc::SEEK_DATA)? else {
            break;
        };
        let end = seek(start, libc::SEEK_HOLE)?.unwrap_or(len).min(len);
        if end > start {
            out.push((start, end));
        }
        off = end;
    }
    Ok(out)
}

/// Threads that copy: chunk `i` (by its offset, `CHUNK`-aligned) goes to
/// lane `i % LANES`, each with its own checksum.
const LANES: u64 = 2;

/// Walk the data of `f` (within `len`) a `CHUNK`-aligned chunk at a
/// time, on [`LANES`] threads. `chunk(offset, bytes, runs)` gets each
/// chunk that has a non-zero page, with the byte ranges of its runs of
/// non-zero pages. Returns the checksum: of each lane's checksum of its
/// non-zero pages with their offsets.
fn scan<F>(f: &File, len: u64, chunk: F) -> io::Result<String>
where
    F: Fn(u64, &[u8], &[(usize, usize)]) -> io::Result<()> + Sync,
{
    let ranges = data_ranges(f, len)?;
    let lanes: io::Result<Vec<[u8; 32]>> = std::thread::scope(|sc| {
        let running: Vec<_> = (0..LANES)
            .map(|lane| {
                let (ranges, chunk) = (&ranges, &chunk);
                sc.spawn(move || scan_lane(f, ranges, lane, chunk))
            })
            .collect();
        running
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a RAM copy thread failed")))
            })
            .collect()
    });
    let mut h = Sha256::new();
    for l in lanes? {
        h.update(l);
    }
    Ok(format!("{:x}", h.finalize()))
}

fn scan_lane<F>(f: &File, ranges: &[(u64, u64)], lane: u64, chunk: &F) -> io::Result<[u8; 32]>
where
    F: Fn(u64, &[u8], &[(usize, usize)]) -> io::Result<()>,
{
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut runs = Vec::new();
    for &(start, end) in ranges {
        let mut off = start;
        while off < end {
            let index = off / CHUNK as u64;
            let stop = ((index + 1) * CHUNK as u64).min(end);
            if index % LANES != lane {
                off = stop;
                continue;
            }
            let bytes = &mut buf[..(stop - off) as usize];
            f.read_exact_at(bytes, off)?;
            runs.clear();
            for (i, p) in bytes.chunks(PAGE).enumerate() {
                if p == &ZERO[..p.len()] {
                    continue;
                }
                let at = i * PAGE;
                h.update((off + at as u64).to_le_bytes());
                h.update(p);
                match runs.last_mut() {
                    Some((_, e)) if *e == at => *e = at + p.len(),
                    _ => runs.push((at, at + p.len())),
                }
            }
            if !runs.is_empty() {
                chunk(off, bytes, &runs)?;
            }
            off = stop;
        }
    }
    Ok(h.finalize().into())
}

/// Copy guest RAM `src` (`size` bytes) to a new sparse file `dst`;
/// returns the checksum. A chunk with any data is written whole: holes
/// only where a whole chunk is zero keep the file in few extents, cheap
/// to read back and to delete.
pub fn save(src: &Path, size: u64, dst: &Path) -> io::Result<String> {
    let from = File::open(src)?;
    // The guest's memory holds its keys: for the owner only.
    use std::os::unix::fs::OpenOptionsExt;
    let to = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dst)?;
    to.set_len(size)?;
    let sum = scan(&from, size, |at, bytes, _| to.write_all_at(bytes, at))?;
    to.sync_all()?;
    Ok(sum)
}

/// Fill `ram` from a file [`save`] wrote (of the size saved:
/// [`crate::host::suspend::saved::load_ram`] checks); returns the checksum of what it
/// read, for the caller to compare with the saved one. Only the non-zero
/// pages are written: the rest of a new memfd is zero already, and stays
/// unallocated.
pub fn fill(src: &Path, size: u64, ram: &File) -> io::Result<String> {
    let from = File::open(src)?;
    scan(&from, size, |at, bytes, runs| {
        runs.iter()
            .try_for_each(|&(s, e)| ram.write_all_at(&bytes[s..e], at + s as u64))
    })
}

#[cfg(test)]
#[path = "ram_tests.rs"]
mod tests;
