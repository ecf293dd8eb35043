//! `b2d logs [-f]`: the machine's serial console, this boot's (the one
//! before is kept as `serial.log.1`), then what the host agent said
//! (forwards made, removed or skipped, and why).

use crate::host::machine::{io_err, Machine, MachineError, Store};
use crate::host::qemu;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error("machine \"{name}\" has no console log yet ({path}): start it with `b2d up {name}`")]
    NoLog { name: String, path: PathBuf },
    #[error("writing the console log of machine \"{name}\": {source}")]
    Write {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// `b2d logs NAME`: [`copy`] of machine `name`.
pub fn show(store: &Store, name: &str, follow: bool, out: &mut dyn Write) -> Result<(), LogsError> {
    copy(&store.open(name)?, follow, out)
}

/// Copy the console log to `out`; with `follow`, keep copying what the
/// guest writes until its QEMU exits.
pub fn copy(m: &Machine, follow: bool, out: &mut dyn Write) -> Result<(), LogsError> {
    let path = m.serial_log();
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LogsError::NoLog {
                name: m.name.clone(),
                path,
            })
        }
        Err(e) => return Err(io_err("opening", &path)(e).into()),
    };
    let written = |source| LogsError::Write {
        name: m.name.clone(),
        source,
    };
    let mut pos = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf).map_err(io_err("reading", &path))?;
        if n > 0 {
            pos += n as u64;
            out.write_all(&buf[..n]).map_err(written)?;
            continue;
        }
        if !follow || qemu::running_pid(m).is_none() {
            agent_log(m, out).map_err(written)?;
            return out.flush().map_err(written);
        }
        out.flush().map_err(written)?;
        std::thread::sleep(Duration::from_millis(300));
        // A new boot rotates the log: start over on the new file.
        if std::fs::metadata(&path)
            .map(|md| md.len() < pos)
            .unwrap_or(false)
        {
            f = std::fs::File::open(&path).map_err(io_err("opening", &path))?;
            pos = 0;
        }
        f.seek(SeekFrom::Start(pos))
            .map_err(io_err("seeking", &path))?;
    }
}

/// The host agent's log after the console, under a header, if it said
/// anything.
fn agent_log(m: &Machine, out: &mut dyn Write) -> std::io::Result<()> {
    let path = crate::host::agent_run::log_file(m);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(());
    }
    writeln!(out, "--- host agent ({}) ---", path.display())?;
    out.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::machine::sample;

    #[test]
    fn the_log_is_copied_and_a_missing_one_is_explained() {
        let t = tempfile::tempdir().unwrap();
        let m = sample(t.path());
        let mut out = Vec::new();
        let e = copy(&m, false, &mut out).unwrap_err().to_string();
        assert!(e.contains("has no console log yet"), "{e}");
        std::fs::write(m.serial_log(), "Linux version\nb2d-init\n").unwrap();
        // Follow ends at once: no QEMU runs for this machine.
        copy(&m, true, &mut out).unwrap();
        assert_eq!(out, b"Linux version\nb2d-init\n");

        // What the host agent skipped shows after the console.
        let agent = crate::host::agent_run::log_file(&m);
        std::fs::write(
            &agent,
            "2026-12-01T10:00:00Z not forwarding 80/tcp: in use\n",
        )
        .unwrap();
        let mut out = Vec::new();
        copy(&m, false, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "Linux version\nb2d-init\n--- host agent ({}) ---\n2026-12-01T10:00:00Z not forwarding 80/tcp: in use\n",
                agent.display()
            )
        );
    }
}
