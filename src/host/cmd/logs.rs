//! `b2d logs [-f]`: the machine's serial console, this boot's (the host
//! agent moves what it no longer keeps to `serial.log.1`, and so does a
//! new boot), then what the host agent said (forwards made, removed or
//! skipped, and why). Both are the guest's words: shown printable.

use super::{Context, Output};
use crate::host::store::{io_err, Machine, MachineError, Store, DEFAULT_NAME};
use crate::host::{agent::log, vm, vm::console, vm::console_rotate};
use crate::util::{printable_text, PrintableStream};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
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

/// `b2d logs [-f] [NAME]`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
    /// Keep printing until the machine stops.
    #[arg(short, long)]
    pub follow: bool,
}

/// `b2d logs NAME`: [`copy`] of machine `name`, as its output; with
/// `-f`, written to the terminal's stdout as the guest writes (the one
/// output that does not wait for the verb to end).
pub fn run(store: &Store, args: LogsArgs, cx: &mut Context) -> Result<Output, LogsError> {
    let m = store.open(&args.name)?;
    if args.follow {
        copy(&m, true, cx.term.stdout())?;
        return Ok(Output::default());
    }
    let mut text = Vec::new();
    copy(&m, false, &mut text)?;
    Ok(Output::stdout(String::from_utf8_lossy(&text)))
}

/// Copy the console log to `out`, printable (see
/// [`crate::util::printable_text`]); with `follow`, keep copying what the
/// guest writes, across rotations, until its QEMU exits.
pub fn copy(m: &Machine, follow: bool, out: &mut dyn Write) -> Result<(), LogsError> {
    let path = m.serial_log();
    let open = |path: &PathBuf| match File::open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(LogsError::NoLog {
            name: m.name.clone(),
            path: path.clone(),
        }),
        Err(e) => Err(io_err("open", path)(e).into()),
    };
    let written = |source| LogsError::Write {
        name: m.name.clone(),
        source,
    };
    let mut f = open(&path)?;
    let (text, mut pos) = console::read_open(&mut f).map_err(io_err("read", &path))?;
    out.write_all(printable_text(&text).as_bytes())
        .map_err(written)?;
    if follow {
        let mut text = PrintableStream::default();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            f.seek(SeekFrom::Start(pos))
                .map_err(io_err("seek in", &path))?;
            let n = f.read(&mut buf).map_err(io_err("read", &path))?;
            if n > 0 {
                pos += n as u64;
                out.write_all(text.push(&buf[..n]).as_bytes())
                    .map_err(written)?;
                continue;
            }
            if renewed(&f, &path, pos) {
                // Read to its end above: go on in the new file, after what
                // a rotation carried into it.
                f = open(&path)?;
                let mut start = Vec::new();
                Read::by_ref(&mut f)
                    .take(4096)
                    .read_to_end(&mut start)
                    .map_err(io_err("read", &path))?;
                pos = console_rotate::carried_len(&start);
                continue;
            }
            if vm::running_pid(m).is_none() {
                break;
            }
            out.flush().map_err(written)?;
            std::thread::sleep(Duration::from_millis(300));
        }
        out.write_all(text.finish().as_bytes()).map_err(written)?;
    }
    agent_log(m, out).map_err(written)?;
    out.flush().map_err(written)
}

/// Whether the console log at `path` is not `f`, read to `pos`, any more
/// (rotated, or a new boot's) or was cut back in place.
fn renewed(f: &File, path: &Path, pos: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(now), Ok(was)) = (std::fs::metadata(path), f.metadata()) else {
        return false;
    };
    (now.dev(), now.ino()) != (was.dev(), was.ino()) || now.len() < pos
}

/// The host agent's log after the console, under a header, if it said
/// anything: its last [`agent_log::CAP`] bytes and a quarter at most,
/// printable.
fn agent_log(m: &Machine, out: &mut dyn Write) -> std::io::Result<()> {
    let path = m.agent_log();
    let mut text = Vec::new();
    if let Ok(mut f) = File::open(&path) {
        let max = log::CAP + log::CAP / 4;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
        f.take(max).read_to_end(&mut text)?;
    }
    let text = String::from_utf8_lossy(&text);
    if text.trim().is_empty() {
        return Ok(());
    }
    writeln!(out, "--- host agent ({}) ---", path.display())?;
    out.write_all(printable_text(&text).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::store::sample;

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
        let agent = &m.agent_log();
        std::fs::write(
            agent,
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

    #[test]
    fn the_log_is_the_output_and_following_streams_it_to_the_terminal() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        let m = crate::host::store::saved_sample(&store);
        std::fs::write(m.serial_log(), "Linux version\n").unwrap();
        let args = |follow| LogsArgs {
            name: "dev".into(),
            follow,
        };
        let mut term = crate::host::cmd::context::TestTerminal::default();
        let out = run(&store, args(false), &mut term.context()).unwrap();
        assert_eq!(out.stdout, "Linux version\n");
        assert!(term.streamed.is_empty());
        // Follow ends at once: no QEMU runs for this machine.
        let out = run(&store, args(true), &mut term.context()).unwrap();
        assert_eq!(out.stdout, "");
        assert_eq!(term.streamed, b"Linux version\n");
    }

    #[test]
    fn what_the_guest_wrote_is_shown_printable_with_its_lines() {
        let t = tempfile::tempdir().unwrap();
        let m = sample(t.path());
        std::fs::write(
            m.serial_log(),
            b"boot\r\n\x1b]0;title\x07\xff\x1b[31mred\r\n".as_slice(),
        )
        .unwrap();
        std::fs::write(m.agent_log(), "x forwarding 80/tcp (\u{1b}[2J)\n").unwrap();
        let mut out = Vec::new();
        copy(&m, false, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("boot\n\\x1b]0;title\\x07\u{fffd}\\x1b[31mred\n--- host agent ("),
            "{out}"
        );
        assert!(out.ends_with("x forwarding 80/tcp (\\x1b[2J)\n"), "{out}");
    }

    /// What `b2d logs -f` has printed so far.
    #[derive(Clone, Default)]
    struct Seen(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Seen {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn following_goes_on_across_a_rotation_without_repeating_the_head() {
        let t = tempfile::tempdir().unwrap();
        let (m, mut qemu) = crate::host::store::sample_running(t.path());
        let ready = "b2d-ready {\"ms\":1,\"ip\":[],\"data\":null,\"ssh\":true,\"docker\":true}\n";
        std::fs::write(
            m.serial_log(),
            format!("[ 5ms] b2d-init INFO  booting\n{ready}"),
        )
        .unwrap();
        let append = |p: &Path| std::fs::OpenOptions::new().append(true).open(p);
        let mut console = append(&m.serial_log()).unwrap();
        let seen = Seen::default();
        let follower = {
            let (m, mut seen) = (m.clone(), seen.clone());
            std::thread::spawn(move || copy(&m, true, &mut seen).unwrap())
        };
        // The log as it was is shown first; the lines after it are followed.
        let t0 = std::time::Instant::now();
        while !String::from_utf8_lossy(&seen.0.lock().unwrap()).contains(ready) {
            assert!(t0.elapsed() < Duration::from_secs(5), "nothing shown");
            std::thread::sleep(Duration::from_millis(10));
        }
        let limits = console_rotate::Limits {
            rotate_at: 2000,
            ..console_rotate::Limits::CONSOLE
        };
        for i in 0..300 {
            writeln!(console, "line {i:04} ........................").unwrap();
            if i % 100 == 99 {
                let mut reopen = |p: &Path| {
                    console = append(p)?;
                    Ok(())
                };
                let r = console_rotate::rotate_if_due(&m.serial_log(), limits, &mut reopen);
                assert!(r.unwrap().is_some());
                std::thread::sleep(Duration::from_millis(400));
            }
        }
        std::thread::sleep(Duration::from_millis(400));
        qemu.kill().unwrap();
        qemu.wait().unwrap();
        follower.join().unwrap();
        let out = String::from_utf8(seen.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("line ")).collect();
        assert_eq!(lines.len(), 300, "{out}");
        for (i, l) in lines.iter().enumerate() {
            assert!(l.starts_with(&format!("line {i:04} ")), "{out}");
        }
        assert_eq!(out.matches(ready).count(), 1, "{out}");
        assert!(!out.contains("console log rotated"), "{out}");
    }
}
