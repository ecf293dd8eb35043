//! The host agent's process: started detached by `b2d up` (`b2d agent
//! NAME`, hidden), it connects to the machine's port channel (a unix
//! socket QEMU serves for the guest's virtio-serial port) and applies
//! each ports message: a TCP port gets a listener of the agent's own,
//! carried over the tunnel channel ([`tunnel`]); a UDP port a `hostfwd`
//! through the machine's agent QMP socket. It ends when the machine's
//! QEMU does.

pub mod log;

use crate::host::agent::log::say;
use crate::host::forward::listeners;
use crate::host::forward::{self, ForwardError, Forwarder, State};
use crate::host::store::Machine;
use crate::host::vm::qmp::Qmp;
use crate::wire::ports::{PortsMsg, Proto};
use std::io::{self, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn try_lock(m: &Machine) -> Option<nix::fcntl::Flock<std::fs::File>> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(m.agent_lock())
        .ok()?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()
}

/// The lock, tried every 100 ms for up to `wait`.
fn lock_within(m: &Machine, wait: Duration) -> Option<nix::fcntl::Flock<std::fs::File>> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let lock = try_lock(m);
        if lock.is_some() || std::time::Instant::now() >= deadline {
            return lock;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The QEMU pid the running agent serves, if an agent holds the lock.
fn serving(m: &Machine) -> Option<u32> {
    if try_lock(m).is_some() {
        return None;
    }
    crate::host::vm::read_pid(&m.agent_lock())
}

/// Whether an agent serves the machine's current QEMU now. An agent of
/// the QEMU before (`b2d stop` then `b2d up` within its poll) does not
/// count: it is about to end.
pub fn running(m: &Machine) -> bool {
    let qemu = crate::host::vm::running_pid(m);
    qemu.is_some() && serving(m) == qemu
}

/// Start the agent for `m` unless one serves its QEMU: `exe agent NAME`,
/// detached in its own process group (a ctrl-c on `b2d up` does not reach
/// it), its output appended to `agent.log`. An agent still ending for the
/// QEMU before is waited for (it polls once a second). Returns whether it
/// started one.
pub fn ensure(m: &Machine, exe: &Path) -> io::Result<bool> {
    if running(m) {
        return Ok(false);
    }
    drop(lock_within(m, Duration::from_secs(5)));
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(m.agent_log())?;
    let mut agent = crate::sys::run::command(exe);
    agent
        .arg("agent")
        .arg(&m.name)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    crate::sys::run::spawn(&mut agent).map_err(io::Error::other)?;
    Ok(true)
}

/// The forwards in place now, if the agent runs for this QEMU.
pub fn read_state(m: &Machine) -> Option<State> {
    let text = crate::small_file::read(&m.forwards_file(), crate::small_file::JSON_LIMIT).ok()?;
    let s: State = serde_json::from_slice(&text).ok()?;
    (crate::host::vm::running_pid(m) == Some(s.pid)).then_some(s)
}

struct QmpForwarder {
    sock: PathBuf,
}

impl QmpForwarder {
    fn hmp(&self, line: &str) -> Result<(), ForwardError> {
        let mut q = Qmp::connect(&self.sock, Duration::from_secs(5))?;
        let said = q.hmp(line)?;
        if said.is_empty() {
            Ok(())
        } else {
            Err(ForwardError::Qemu(said))
        }
    }
}

/// TCP through the agent's own listeners and the tunnel; UDP through
/// QEMU's `hostfwd` on the user network.
struct Forwards {
    machine: Machine,
    qmp: QmpForwarder,
    tcp: listeners::Listeners,
}

/// The other machine of `m`'s store whose agent forwards (`proto`,
/// `port`) now: the nodes of a swarm all listen on its published ports.
pub fn forwarded_by(m: &Machine, proto: Proto, port: u16) -> Option<String> {
    let others = m.store().list().ok()?;
    others
        .into_iter()
        .flatten()
        .filter(|o| o.name != m.name)
        .find(|o| {
            read_state(o)
                .is_some_and(|s| s.active.iter().any(|l| l.proto == proto && l.port == port))
        })
        .map(|o| o.name)
}

impl Forwards {
    /// Why 127.0.0.1:`port` cannot be had: another machine's forward, or
    /// what the bind said.
    fn refused(&self, proto: Proto, port: u16, error: io::Error) -> ForwardError {
        match forwarded_by(&self.machine, proto, port) {
            Some(other) if error.kind() == io::ErrorKind::AddrInUse => {
                ForwardError::OtherMachine { proto, port, other }
            }
            _ => ForwardError::Refused { proto, port, error },
        }
    }
}

impl Forwarder for Forwards {
    fn available(&mut self, proto: Proto, port: u16) -> Result<(), ForwardError> {
        match proto {
            Proto::Tcp => Ok(()), // add binds it, or says why not
            Proto::Udp => forward::host_port_taken(proto, port)
                .map_or(Ok(()), |e| Err(self.refused(proto, port, e))),
        }
    }
    fn add(&mut self, proto: Proto, port: u16) -> Result<(), ForwardError> {
        match proto {
            Proto::Tcp => self.tcp.add(port).map_err(|e| self.refused(proto, port, e)),
            Proto::Udp => self.qmp.hmp(&forward::hostfwd_add(
                crate::host::vm::spec::USER_NETDEV,
                proto,
                port,
            )),
        }
    }
    fn remove(&mut self, proto: Proto, port: u16) -> Result<(), ForwardError> {
        match proto {
            Proto::Tcp => {
                self.tcp.remove(port);
                Ok(())
            }
            Proto::Udp => self.qmp.hmp(&forward::hostfwd_remove(
                crate::host::vm::spec::USER_NETDEV,
                proto,
                port,
            )),
        }
    }
}

fn save(path: &Path, st: &State) {
    match serde_json::to_vec_pretty(st) {
        Ok(v) => {
            if let Err(e) = crate::atomic::write(path, &v, 0o644) {
                say(&format!("cannot save the port state: {e}"));
            }
        }
        Err(e) => say(&format!("cannot encode the port state: {e}")),
    }
}

/// Apply one line off the ports channel: forwards made and removed, each
/// change logged, and `ports.json` at `path` rewritten when what it holds
/// changed (a guest repeating itself costs no write). Whether it was.
fn on_message(line: &[u8], state: &mut State, fw: &mut dyn Forwarder, path: &Path) -> bool {
    let Some(msg) = PortsMsg::parse(&String::from_utf8_lossy(line)) else {
        return false;
    };
    let before = state.clone();
    let ch = forward::reconcile(state, &msg, fw);
    for l in forward::log_lines(&ch) {
        say(&l);
    }
    let write = *state != before || !path.exists();
    if write {
        save(path, state);
    }
    write
}

/// Keep the machine's console log under its cap while QEMU `pid` runs
/// (see [`crate::host::vm::console_rotate`]), switching QEMU's console through the
/// agent's own QMP monitor.
fn keep_console(m: &Machine, pid: u32) {
    let m = m.clone();
    std::thread::spawn(move || {
        let alive = || crate::host::vm::running_pid(&m) == Some(pid);
        let qmp = &m.agent_qmp_socket();
        let mut reopen = |p: &Path| {
            crate::host::vm::console_rotate::chardev_change(
                qmp,
                crate::host::vm::spec::SERIAL_CHARDEV,
                p,
            )
        };
        let limits = crate::host::vm::console_rotate::Limits::CONSOLE;
        if let Err(e) = crate::host::vm::console_rotate::keep(
            &m.serial_log(),
            limits,
            &alive,
            &mut reopen,
            &say,
        ) {
            say(&format!("cannot watch the console log: {e}"));
        }
    });
}

/// Run the agent for `m` until its QEMU ends.
pub fn run(m: &Machine) -> io::Result<()> {
    // A `b2d ports` probing the lock holds it for a moment: try for 1 s.
    let Some(lock) = lock_within(m, Duration::from_secs(1)) else {
        return Ok(()); // another agent serves this machine
    };
    let Some(pid) = crate::host::vm::running_pid(m) else {
        say("the machine is not running; nothing to do");
        return Ok(());
    };
    {
        use std::io::{Seek, SeekFrom};
        let mut f: &std::fs::File = &lock;
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        writeln!(f, "{pid}")?;
    }
    crate::host::agent::log::init(&m.agent_log());
    keep_console(m, pid);
    let state_path = m.forwards_file();
    let mut state = read_state(m).unwrap_or(State {
        pid,
        ..Default::default()
    });
    // TCP listeners died with the agent before: only UDP forwards (in
    // QEMU) are still in place.
    state.active.retain(|l| l.proto == Proto::Udp);
    let mux = crate::mux::Mux::new(None, std::process::id() << 12);
    let mut fw = Forwards {
        machine: m.clone(),
        qmp: QmpForwarder {
            sock: m.agent_qmp_socket(),
        },
        tcp: listeners::Listeners::new(mux.clone()),
    };
    {
        let (m, tsock) = (m.clone(), m.tunnel_channel());
        std::thread::spawn(move || {
            let alive = || crate::host::vm::running_pid(&m) == Some(pid);
            listeners::sessions(&mux, &tsock, &alive, &say);
        });
    }
    say(&format!(
        "agent for machine {} (QEMU pid {pid}) started",
        m.name
    ));
    // A resume leaves its loaded state behind for this agent to delete.
    {
        let m = m.clone();
        std::thread::spawn(move || crate::host::suspend::saved::remove_loaded(&m));
    }
    let alive = || crate::host::vm::running_pid(m) == Some(pid);
    while alive() {
        let s = match UnixStream::connect(m.ports_channel()) {
            Ok(s) => s,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        let mut r = BufReader::new(s);
        let mut buf = Vec::new();
        while alive() {
            match forward::read_line(&mut r, &mut buf)? {
                None => break, // QEMU closed the channel: reconnect
                Some(false) => continue,
                Some(true) => {}
            }
            on_message(&buf, &mut state, &mut fw, &state_path);
            buf.clear();
        }
    }
    let _ = std::fs::remove_file(&state_path);
    say("the machine stopped; agent ends");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine_with_qemu(dir: &Path) -> (Machine, std::process::Child) {
        crate::host::store::sample_running(dir)
    }

    fn hold_lock(m: &Machine, pid: u32) -> nix::fcntl::Flock<std::fs::File> {
        let l = try_lock(m).expect("lock free");
        std::fs::write(m.agent_lock(), format!("{pid}\n")).unwrap();
        l
    }

    #[test]
    fn an_agent_counts_only_for_the_qemu_it_serves() {
        let t = tempfile::tempdir().unwrap();
        let (m, mut qemu) = machine_with_qemu(t.path());
        assert!(!running(&m), "no agent holds the lock");
        let l = hold_lock(&m, qemu.id());
        assert!(running(&m), "an agent serving this QEMU");
        drop(l);
        let l = hold_lock(&m, qemu.id() + 100_000);
        assert!(
            !running(&m),
            "an agent of the QEMU before does not serve this one"
        );
        drop(l);
        qemu.kill().unwrap();
        qemu.wait().unwrap();
    }

    #[test]
    fn a_port_another_machine_forwards_is_named_after_it() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("dev")).unwrap();
        let (dev, mut qemu) = machine_with_qemu(&t.path().join("dev"));
        dev.save_config().unwrap();
        let mut other = crate::host::store::sample(t.path().join("dev-2"));
        other.name = "dev-2".into();
        std::fs::create_dir(&other.dir).unwrap();
        other.save_config().unwrap();
        let state = State {
            pid: qemu.id(),
            active: vec![crate::wire::ports::Listener {
                proto: Proto::Tcp,
                port: 18080,
                by: None,
            }],
            skipped: vec![],
        };
        std::fs::write(dev.forwards_file(), serde_json::to_vec(&state).unwrap()).unwrap();
        assert_eq!(
            forwarded_by(&other, Proto::Tcp, 18080).as_deref(),
            Some("dev")
        );
        assert_eq!(forwarded_by(&other, Proto::Udp, 18080), None);
        assert_eq!(forwarded_by(&dev, Proto::Tcp, 18080), None, "not itself");
        let fw = Forwards {
            machine: other.clone(),
            qmp: QmpForwarder {
                sock: other.agent_qmp_socket(),
            },
            tcp: listeners::Listeners::new(crate::mux::Mux::new(None, 1)),
        };
        let in_use = || io::Error::from(io::ErrorKind::AddrInUse);
        assert_eq!(
            fw.refused(Proto::Tcp, 18080, in_use()).to_string(),
            "127.0.0.1:18080/tcp already forwards to machine \"dev\""
        );
        assert!(fw
            .refused(Proto::Tcp, 18081, in_use())
            .to_string()
            .contains("in use by another program"));
        qemu.kill().unwrap();
        qemu.wait().unwrap();
        assert_eq!(forwarded_by(&other, Proto::Tcp, 18080), None, "QEMU gone");
    }

    #[test]
    fn ensure_waits_for_the_agent_of_the_qemu_before_to_end() {
        let t = tempfile::tempdir().unwrap();
        let (m, mut qemu) = machine_with_qemu(t.path());
        let old = hold_lock(&m, qemu.id() + 100_000);
        // Taken before the spawn, so the lock is held at least 400 ms after it.
        let t0 = std::time::Instant::now();
        let ends = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            drop(old);
        });
        let started = ensure(&m, Path::new("/bin/true")).unwrap();
        assert!(started, "a new agent is started, not skipped");
        assert!(
            t0.elapsed() >= Duration::from_millis(400),
            "it waited for the old agent's lock: {:?}",
            t0.elapsed()
        );
        ends.join().unwrap();
        let _l = hold_lock(&m, qemu.id());
        assert!(
            !ensure(&m, Path::new("/bin/false")).unwrap(),
            "one serves already"
        );
        qemu.kill().unwrap();
        qemu.wait().unwrap();
    }

    struct Yes;

    impl Forwarder for Yes {
        fn available(&mut self, _: Proto, _: u16) -> Result<(), ForwardError> {
            Ok(())
        }
        fn add(&mut self, _: Proto, _: u16) -> Result<(), ForwardError> {
            Ok(())
        }
        fn remove(&mut self, _: Proto, _: u16) -> Result<(), ForwardError> {
            Ok(())
        }
    }

    #[test]
    fn ports_json_is_written_only_when_what_it_holds_changes() {
        use std::os::unix::fs::MetadataExt;
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("ports.json");
        let ino = || std::fs::metadata(&path).unwrap().ino();
        let mut st = State::default();
        let one = br#"{"ports":[{"proto":"tcp","port":8080,"by":"nginx"}]}"#;
        assert!(on_message(one, &mut st, &mut Yes, &path));
        let first = ino();
        for _ in 0..50 {
            assert!(!on_message(one, &mut st, &mut Yes, &path));
        }
        assert!(!on_message(b"noise", &mut st, &mut Yes, &path));
        assert_eq!(ino(), first, "the same set again is not written");
        // Another listener name on the same port is a change.
        let renamed = br#"{"ports":[{"proto":"tcp","port":8080,"by":"httpd"}]}"#;
        assert!(on_message(renamed, &mut st, &mut Yes, &path));
        assert_ne!(ino(), first);
        let saved: State = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(saved.active[0].by.as_deref(), Some("httpd"));
        // Deleted behind the agent's back: written again.
        std::fs::remove_file(&path).unwrap();
        assert!(on_message(renamed, &mut st, &mut Yes, &path));
    }
}
