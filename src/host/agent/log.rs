//! The host agent's log, `agent.log`: one line per thing it did, each
//! stamped and made printable (its lines quote what the guest sent: a
//! listener's name, a reason). `b2d up` starts the agent with its output
//! appended to the file; once the file passes [`CAP`], the agent moves
//! it to `agent.log.1` (replacing the one before) and goes on in a new
//! one.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// `agent.log` is rotated once it passes this.
pub const CAP: u64 = 1 << 20;

/// The log the agent's stdout and stderr go to, once [`init`] named it.
static LOG: Mutex<Option<PathBuf>> = Mutex::new(None);

/// From now on, [`say`] keeps `path` (which the agent's stdout and stderr
/// are appended to) under [`CAP`].
pub fn init(path: &Path) {
    *LOG.lock().unwrap_or_else(PoisonError::into_inner) = Some(path.to_path_buf());
}

/// `line`, printable, with a UTC timestamp in front.
pub fn stamped(now: time::OffsetDateTime, line: &str) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z {}\n",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        crate::util::printable(line)
    )
}

/// One line in the agent's log (its stderr).
pub fn say(line: &str) {
    let log = LOG.lock().unwrap_or_else(PoisonError::into_inner);
    let text = stamped(time::OffsetDateTime::now_utc(), line);
    let _ = io::stderr().lock().write_all(text.as_bytes());
    let Some(path) = log.as_deref() else { return };
    if let Ok(Some(new)) = rotated(io::stderr().as_fd(), path, CAP) {
        let _ = nix::unistd::dup2_stdout(&new);
        let _ = nix::unistd::dup2_stderr(&new);
    }
}

/// If `out` writes to the file at `path` and that has passed `cap`
/// bytes: the file moved to `path.1` and a new one at `path`, opened for
/// appending, to write to instead.
pub fn rotated(out: impl AsFd, path: &Path, cap: u64) -> io::Result<Option<File>> {
    use std::os::unix::fs::MetadataExt;
    let st = nix::sys::stat::fstat(out).map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    let md = std::fs::metadata(path)?;
    let same = (st.st_dev as u64, st.st_ino as u64) == (md.dev(), md.ino());
    if !same || (st.st_size as u64) <= cap {
        return Ok(None);
    }
    std::fs::rename(path, crate::host::store::files::rotated(path))?;
    let new = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    Ok(Some(new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_stamped_and_printable() {
        let t = time::macros::datetime!(2026-12-01 10:00:05 UTC);
        assert_eq!(
            stamped(t, "forwarding 80/tcp (\u{1b}[31mevil\u{9b}2J)\nnext"),
            "2026-12-01T10:00:05Z forwarding 80/tcp (\\x1b[31mevil\\u{9b}2J)\\x0anext\n"
        );
    }

    #[test]
    fn a_log_past_its_cap_moves_aside_and_one_copy_is_kept() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("agent.log");
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        out.write_all(&[b'a'; 100]).unwrap();
        assert!(rotated(&out, &path, 100).unwrap().is_none(), "at the cap");
        // Another file than the log (a terminal, a test's stderr): never.
        let other = File::create(t.path().join("other")).unwrap();
        assert!(rotated(&other, &path, 0).unwrap().is_none());
        for round in [b'b', b'c'] {
            out.write_all(&[round; 101]).unwrap();
            out = rotated(&out, &path, 100).unwrap().expect("rotated");
            out.write_all(b"new\n").unwrap();
            let kept = std::fs::read(t.path().join("agent.log.1")).unwrap();
            assert_eq!(kept.last(), Some(&round), "the log before, whole");
            assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        }
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 3);
    }
}
