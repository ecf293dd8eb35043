//! Keeping a running machine's console log under [`LOG_CAP`]. QEMU
//! appends to `serial.log` (its chardev is opened with `append=on`); the
//! host agent watches the file (inotify: it wakes when the guest writes,
//! never on a timer) and, once it nears the cap, starts a new one:
//!
//! 1. `serial.log.next` gets a [`marker`] line and the [`head`]: this
//!    boot's b2d-init lines and its last ready line, carried so that
//!    `b2d status`, `status --boot`, `up`'s wait and
//!    [`console::said_since_ready`] read the same after any number of
//!    rotations;
//! 2. QMP `chardev-change` points the console (chardev `serial0`) at it,
//!    appending. QEMU 7.2's isa-serial supports the swap (tried: the
//!    guest's next lines land in the new file);
//! 3. the old file becomes `serial.log.1` (a hard link, then the old one
//!    is replaced by a rename), so a reader always finds a `serial.log`.
//!
//! Nothing the guest writes is lost at a swap: until QEMU has switched,
//! it goes on into the old file. Where QEMU refuses the swap, the log is
//! copied to `serial.log.1` and cut back to the head in place instead
//! (copy-truncate): what the guest writes between the copy and the cut
//! is lost then, so it is only the fallback.

use crate::host::vm::console::{self, LOG_CAP};
use crate::wire::console as wire;
use crate::wire::ready::Ready;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

/// How big the log may grow and what a rotation carries.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The log never holds more than this (while the agent keeps up).
    pub cap: u64,
    /// A rotation starts at this size: the rest of the cap is room for
    /// what the guest writes while it happens.
    pub rotate_at: u64,
    /// The most bytes of b2d-init lines a rotation carries.
    pub head_max: usize,
    /// After a wake-up on a log well under `rotate_at`, wait this long
    /// before the next: a flood's many writes then cost one wake-up.
    pub settle: Duration,
}

impl Limits {
    pub const CONSOLE: Limits = Limits {
        cap: LOG_CAP,
        rotate_at: LOG_CAP - LOG_CAP / 4,
        head_max: 64 << 10,
        settle: Duration::from_millis(50),
    };
}

/// A line longer than this is never carried (no b2d-init line is).
const LINE_MAX: usize = 4 << 10;

const MARKER: &str = "[b2d] console log rotated: the ";

/// The first line of a rotated log: `moved` bytes went to
/// `serial.log.1`, and the `head` bytes after this line are carried.
pub fn marker(moved: u64, head: usize) -> String {
    format!(
        "{MARKER}{moved} bytes before this are in serial.log.1; \
         the next {head} bytes repeat this boot's b2d-init lines\n"
    )
}

/// The length of the carried head after a [`marker`] line.
pub fn parse_marker(line: &str) -> Option<u64> {
    let rest = line.strip_prefix(MARKER)?;
    let (_, rest) = rest.split_once("; the next ")?;
    rest.split_once(' ')?.0.parse().ok()
}

/// How many bytes at the start of a log a rotation wrote (its marker
/// line and the head after it), from the log's first bytes; 0 for a log
/// that was not rotated.
pub fn carried_len(start: &[u8]) -> u64 {
    let Some(end) = start.iter().position(|&b| b == b'\n') else {
        return 0;
    };
    let line = String::from_utf8_lossy(&start[..end]);
    parse_marker(&line).map_or(0, |head| end as u64 + 1 + head)
}

/// The last lines of `lines` whose sizes (with their line feeds) fit in
/// `budget`.
fn last_fitting<'a>(lines: &'a [&'a str], budget: usize) -> &'a [&'a str] {
    let (mut start, mut used) = (lines.len(), 0);
    while start > 0 && used + lines[start - 1].len() < budget {
        start -= 1;
        used += lines[start].len() + 1;
    }
    &lines[start..]
}

/// What a rotation carries of `log`: its b2d-init lines and ready lines,
/// in order, at most `max` bytes. The last ready line always; of the
/// b2d-init lines after it (a service that ended since), the last that
/// fit in half of what is left; of those before it, the last that fit
/// in the rest.
pub fn head(log: &str, max: usize) -> String {
    let carried: Vec<&str> = log
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.len() <= LINE_MAX)
        .filter(|l| wire::parse_line(l).is_some() || Ready::parse_line(l).is_some())
        .collect();
    let ready = carried.iter().rposition(|l| Ready::parse_line(l).is_some());
    let (before, ready, after) = match ready {
        Some(i) => (&carried[..i], Some(carried[i]), &carried[i + 1..]),
        None => (&carried[..], None, &carried[..0]),
    };
    let mut budget = max.saturating_sub(ready.map_or(0, |l| l.len() + 1));
    let after = last_fitting(after, budget / 2);
    budget -= after.iter().map(|l| l.len() + 1).sum::<usize>();
    let before = last_fitting(before, budget);
    let mut out = String::new();
    for l in before.iter().chain(&ready).chain(after) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// Bytes that went to `serial.log.1`.
    pub moved: u64,
    /// Why QEMU could not be switched to a new file (the log was copied
    /// and cut in place instead), if it could not.
    pub copied: Option<String>,
}

use crate::host::store::files::next_segment as next;
pub use crate::host::store::files::rotated as previous;

/// Rotate the log at `path` if it holds `limits.rotate_at` bytes or more.
/// `reopen(p)` makes QEMU write its console to `p` from now on.
pub fn rotate_if_due(
    path: &Path,
    limits: Limits,
    reopen: &mut dyn FnMut(&Path) -> io::Result<()>,
) -> io::Result<Option<Rotated>> {
    let moved = match std::fs::metadata(path) {
        Ok(md) if md.len() >= limits.rotate_at => md.len(),
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let head = head(&console::read_log(path), limits.head_max);
    let start = marker(moved, head.len()) + &head;
    let new = next(path);
    std::fs::write(&new, &start)?;
    let copied = match reopen(&new) {
        Ok(()) => {
            let old = previous(path);
            let _ = std::fs::remove_file(&old);
            if std::fs::hard_link(path, &old).is_err() {
                // No hard links here: a moment without a serial.log.
                std::fs::rename(path, &old)?;
            }
            std::fs::rename(&new, path)?;
            None
        }
        Err(e) => {
            let _ = std::fs::remove_file(&new);
            std::fs::copy(path, previous(path))?;
            let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
            f.set_len(0)?;
            f.write_all(start.as_bytes())?;
            Some(e.to_string())
        }
    };
    Ok(Some(Rotated { moved, copied }))
}

/// Point QEMU's console (chardev `id`) at `path`, appending, through the
/// QMP monitor at `sock`.
pub fn chardev_change(sock: &Path, id: &str, path: &Path) -> io::Result<()> {
    let mut q = crate::host::vm::qmp::Qmp::connect(sock, Duration::from_secs(5))?;
    let backend = serde_json::json!({
        "type": "file",
        "data": { "out": path.to_string_lossy(), "append": true },
    });
    q.execute(
        "chardev-change",
        Some(serde_json::json!({ "id": id, "backend": backend })),
    )?;
    Ok(())
}

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Keep the log at `path` under `limits.cap` while `alive()`: rotate it
/// whenever a write brings it to `limits.rotate_at`. Each rotation, and
/// each new reason one failed, is told to `say`.
pub fn keep(
    path: &Path,
    limits: Limits,
    alive: &dyn Fn() -> bool,
    reopen: &mut dyn FnMut(&Path) -> io::Result<()>,
    say: &dyn Fn(&str),
) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let ino = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(errno)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_os_string());
    // The folder too: a log made anew (a rotation, a new boot) is
    // watched in its turn.
    ino.add_watch(dir, AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
        .map_err(errno)?;
    let mut file: Option<WatchDescriptor> = None;
    let mut failed = String::new();
    while alive() {
        if file.is_none() {
            file = ino.add_watch(path, AddWatchFlags::IN_MODIFY).ok();
        }
        match rotate_if_due(path, limits, reopen) {
            Ok(Some(r)) => {
                failed.clear();
                say(&match r.copied {
                    None => format!(
                        "console log rotated: {} bytes moved to serial.log.1",
                        r.moved
                    ),
                    Some(why) => format!(
                        "console log rotated by copying {} bytes to serial.log.1 (QEMU could not switch files: {why})",
                        r.moved
                    ),
                });
                if let Some(wd) = file.take() {
                    let _ = ino.rm_watch(wd);
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                let why = e.to_string();
                if why != failed {
                    say(&format!("cannot rotate the console log: {why}"));
                    failed = why;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        let mut fds = [PollFd::new(ino.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(errno(e)),
        }
        let events = match ino.read_events() {
            Ok(ev) => ev,
            Err(nix::errno::Errno::EAGAIN) => Vec::new(),
            Err(e) => return Err(errno(e)),
        };
        let renewed = events.iter().any(|e| e.name.is_some() && e.name == name);
        if renewed {
            if let Some(wd) = file.take() {
                let _ = ino.rm_watch(wd);
            }
        }
        let small = std::fs::metadata(path).map_or(true, |m| m.len() < limits.rotate_at / 2);
        if small {
            std::thread::sleep(limits.settle);
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "console_rotate_tests.rs"]
mod tests;
