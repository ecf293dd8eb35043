//! The host end of forwarded TCP ports: the host agent listens on
//! 127.0.0.1:P itself and carries each accepted connection to the guest
//! over the tunnel channel (a virtio-serial port, see
//! [`crate::wire::tunnel`]), instead of QEMU's user-network `hostfwd`,
//! whose TCP path under TCG moved a tenth of what the channel does.

use crate::mux::Mux;
use std::collections::BTreeMap;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often an accept loop looks whether its forward was removed.
const STOP_POLL: Duration = Duration::from_millis(100);

/// How long a write on the tunnel channel may make no progress before
/// the session ends (QEMU stopped taking bytes: the guest does not read
/// its port). Every stream waits behind a blocked write, so it must end.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Run host sessions on the channel socket `sock` while `alive()`:
/// connect, say HELLO, serve until the channel ends, connect again.
pub fn sessions(mux: &Arc<Mux>, sock: &Path, alive: &dyn Fn() -> bool, say: &dyn Fn(&str)) {
    while alive() {
        let Ok(s) = UnixStream::connect(sock) else {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        };
        let Ok(out) = s.try_clone() else { continue };
        if out.set_write_timeout(Some(WRITE_TIMEOUT)).is_err() {
            continue;
        }
        mux.connect(Box::new(out));
        if mux.hello().is_err() {
            continue;
        }
        match mux.serve(&mut { s }) {
            Ok(()) => say("tunnel channel closed"),
            Err(e) => say(&format!("tunnel channel out of step ({e}); reconnecting")),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Open {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// The TCP ports the agent listens on, each carried through `mux`.
pub struct Listeners {
    mux: Arc<Mux>,
    open: BTreeMap<u16, Open>,
}

impl Listeners {
    pub fn new(mux: Arc<Mux>) -> Listeners {
        Listeners {
            mux,
            open: BTreeMap::new(),
        }
    }

    /// Listen on 127.0.0.1:`port` for guest port `port`.
    pub fn add(&mut self, port: u16) -> io::Result<()> {
        if self.open.contains_key(&port) {
            return Ok(());
        }
        let l = TcpListener::bind(("127.0.0.1", port))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (mux, flag) = (self.mux.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("accept-{port}"))
            .spawn(move || accept_loop(&l, port, &mux, &flag))?;
        self.open.insert(port, Open { stop, thread });
        Ok(())
    }

    /// Stop listening; connections already carried go on to their end.
    pub fn remove(&mut self, port: u16) {
        if let Some(o) = self.open.remove(&port) {
            o.stop.store(true, Ordering::SeqCst);
            let _ = o.thread.join();
        }
    }
}

fn accept_loop(l: &TcpListener, port: u16, mux: &Arc<Mux>, stop: &AtomicBool) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let wait = PollTimeout::try_from(STOP_POLL.as_millis() as i32).unwrap_or(PollTimeout::NONE);
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(l.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, wait) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => return,
        }
        if let Ok((s, _)) = l.accept() {
            // Off this thread, which `remove` (the ports loop) joins: the
            // channel may be slow to take the OPEN. Without a channel, or
            // with too many streams open, the connection closes at once.
            let mux = mux.clone();
            let _ = std::thread::Builder::new()
                .name(format!("open-{port}"))
                .spawn(move || mux.open(port, s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    #[test]
    fn listens_while_added_and_carries_connections_to_the_guest_side() {
        let (a, b) = UnixStream::pair().unwrap();
        let host = Mux::new(None, 1);
        host.connect(Box::new(a.try_clone().unwrap()));
        let h2 = host.clone();
        std::thread::spawn(move || h2.serve(&mut { a }));
        // The guest side dials a "guest" server that greets.
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let gport = server.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in server.incoming() {
                let _ = s.unwrap().write_all(b"hi from the guest");
            }
        });
        let guest = Mux::new(
            Some(Box::new(move |_port| {
                TcpStream::connect(("127.0.0.1", gport))
            })),
            0,
        );
        guest.connect(Box::new(b.try_clone().unwrap()));
        let g2 = guest.clone();
        std::thread::spawn(move || g2.serve(&mut { b }));

        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut ls = Listeners::new(host);
        ls.add(port).unwrap();
        let e = TcpListener::bind(("127.0.0.1", port)).unwrap_err();
        assert_eq!(
            e.kind(),
            io::ErrorKind::AddrInUse,
            "the agent holds the port"
        );
        let mut got = String::new();
        TcpStream::connect(("127.0.0.1", port))
            .unwrap()
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!(got, "hi from the guest");
        ls.remove(port);
        let e = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(
            e.kind(),
            io::ErrorKind::ConnectionRefused,
            "closed on remove"
        );
        // A port someone else holds is an error the caller reports.
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = held.local_addr().unwrap().port();
        let e = ls.add(taken).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn a_stuck_channel_never_holds_up_removing_a_forward() {
        // A channel nobody reads, already full: every write on it blocks.
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut fill = a.try_clone().unwrap();
        while fill.write_all(&[0u8; 4096]).is_ok() {}
        a.set_nonblocking(false).unwrap();
        let host = Mux::new(None, 1);
        host.connect(Box::new(a.try_clone().unwrap()));
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut ls = Listeners::new(host);
        ls.add(port).unwrap();
        let clients: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(300)); // accepted, OPEN stuck
        let t0 = std::time::Instant::now();
        ls.remove(port);
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "remove waited {:?} for the channel",
            t0.elapsed()
        );
        drop(clients);
    }
}
