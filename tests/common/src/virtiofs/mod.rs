//! A hostile virtio-fs guest for tests: a FUSE client that talks to a
//! share server (virtiofsd) over its vhost-user socket as a guest kernel's
//! driver would, so a test sends crafted requests (names holding `/` or
//! `..`) straight to the server, with no well-behaved kernel between.
//!
//! - [`FuseClient`]: the vhost-user set-up, FUSE_INIT, and one method per
//!   request (lookup, mkdir, create, read, rename...).
//! - [`Daemon`]: a running server however it was started (a `Command` of
//!   the test's, or b2d's own launcher): waits for its socket, collects
//!   its stderr for failure messages, kills it on drop.
//! - [`escape`]: a directory tree with things around the shared folder,
//!   the crafted requests that try to reach them, and what each changed.
//!
//! Every wait is bounded by [`TIMEOUT`]; a server that does not answer
//! fails the test with a message naming the request.

pub mod escape;
mod fuse;
mod fuse_wire;
mod vhost_user;
mod virtqueue;

pub use fuse::{FuseClient, MAX_IO, ROOT};
pub use fuse_wire::{Attr, Entry, Errno};
pub use vhost_user::TIMEOUT;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running share server on a vhost-user socket, killed and reaped on
/// drop. A test that fails while it runs prints what it said.
pub struct Daemon {
    child: Child,
    sock: PathBuf,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Daemon {
    /// Take over `child`, which serves (or is about to serve) `sock`. If
    /// its stderr is piped, it is read from here on, for [`Daemon::log`].
    pub fn new(mut child: Child, sock: &Path) -> Daemon {
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut err) = child.stderr.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut buf = [0; 4096];
                while let Ok(n @ 1..) = err.read(&mut buf) {
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Daemon {
            child,
            sock: sock.to_path_buf(),
            log,
        }
    }

    /// What the server wrote on its stderr so far (nothing if it was not
    /// piped).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    /// The server's process.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Connect a [`FuseClient`] as soon as the server listens. Fails the
    /// test, with what the server said, if it exits first, does not
    /// listen within [`TIMEOUT`], or refuses the set-up.
    pub fn connect(&mut self) -> FuseClient {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "the share server exited ({status}) before serving {}; it said:\n{}",
                    self.sock.display(),
                    self.log()
                );
            }
            if self.sock.exists() {
                match FuseClient::connect(&self.sock) {
                    Ok(c) => return c,
                    // Bound but not listening yet.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(e) => panic!(
                        "{}: {e}; the server said:\n{}",
                        self.sock.display(),
                        self.log()
                    ),
                }
            }
            assert!(
                Instant::now() < deadline,
                "the share server did not listen on {} within {} s; it said:\n{}",
                self.sock.display(),
                TIMEOUT.as_secs(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "the share server on {} said:\n{}",
                self.sock.display(),
                self.log()
            );
        }
    }
}
