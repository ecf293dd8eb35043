//! The port watch: which TCP and UDP ports listen in the guest on an
//! address other than loopback (docker-proxy for `-p`/`-P`, a
//! `--network host` server), and swarm's published ports (a manager asks
//! dockerd for them, see [`super::ingress`]), sent to the host agent
//! over virtio-serial whenever the set changes (see
//! [`crate::wire::ports`]). The host forwards each to its own 127.0.0.1.
//!
//! Polling `/proc/net/{tcp,tcp6,udp,udp6}` every [`INTERVAL`] costs a few
//! hundred microseconds a round and needs no netlink socket; the set goes
//! out again every [`RESEND`] so a host agent that (re)connects late
//! catches up. The channel is opened non-blocking: with no host agent
//! connected a write would otherwise block until one is.
//!
//! `scan.rs` reads `/proc`; this module runs the loop. The virtio-serial
//! port it writes to is found by [`super::virtio_port`].

mod scan;

pub use scan::{scan, scan_node, tcp_listen_addrs, Owners};

use super::virtio_port::channel_device;
use crate::wire::ports::{PortsMsg, CHANNEL};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const INTERVAL: Duration = Duration::from_millis(500);
pub const RESEND: Duration = Duration::from_secs(5);

/// Where the watch reads and writes.
#[derive(Debug, Clone)]
pub struct Watch {
    pub proc_root: PathBuf,
    pub sys_root: PathBuf,
    pub dev_root: PathBuf,
    /// dockerd's socket, asked for swarm's published ports.
    pub docker_sock: PathBuf,
}

/// Run the watch forever (a thread of PID 1). Without the channel (not a
/// b2d-made QEMU machine) it says so once and ends.
pub fn run(w: &Watch) {
    let Some(dev) = channel_device(&w.sys_root, &w.dev_root, CHANNEL) else {
        log::info!("ports: no {CHANNEL} channel; published ports are not forwarded to the host");
        return;
    };
    let mut out = match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&dev)
    {
        Ok(f) => f,
        Err(e) => {
            log::warn!(
                "ports: cannot open {}: {e}; no port forwarding",
                dev.display()
            );
            return;
        }
    };
    log::info!("ports: watching listeners, reporting on {}", dev.display());
    let mut last: Option<PortsMsg> = None;
    let mut sent_at = Instant::now();
    let mut ingress = super::ingress::Poll::new(w.docker_sock.clone());
    let mut owners = Owners::default();
    loop {
        let (mut now, manager) = scan_node(&w.proc_root, &mut owners);
        super::ingress::merge(&mut now.ports, ingress.ports(manager, Instant::now()));
        let changed = last.as_ref() != Some(&now);
        if changed || sent_at.elapsed() >= RESEND {
            if changed {
                let list: Vec<String> = now
                    .ports
                    .iter()
                    .map(|l| format!("{}/{}", l.port, l.proto))
                    .collect();
                log::debug!("ports: listening now: {}", list.join(" "));
            }
            // EAGAIN: no host agent reads right now; the next round resends.
            let _ = out.write_all(now.line().as_bytes());
            sent_at = Instant::now();
            last = Some(now);
        }
        std::thread::sleep(INTERVAL);
    }
}
