//! The guest end of a suspend ([`crate::wire::control`]): a thread of
//! PID 1 that answers the host's requests on the control port.
//!
//! Before the host saves the machine, `suspend` writes the page cache
//! back to the disk (the disk file then holds everything a cold boot
//! would need), drops the clean cache (less to save) and unmounts the
//! shares. After a resume, `resumed` steps the clock over the time spent
//! suspended, renews the DHCP lease and mounts those shares again; their
//! virtiofs devices come back by hotplug, so a mount is retried for a
//! while.

use super::virtio_port::{host_sent, open_port};
use crate::sys::Sys;
use crate::wire::control::{Op, Reply, Request, CHANNEL, MAX_LINE};
use crate::wire::guest_config::Share;
use crate::wire::network::{Peer, PrivateNic};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct Control {
    pub root: PathBuf,
    pub proc_root: PathBuf,
    pub sys_root: PathBuf,
    pub dev_root: PathBuf,
    /// udhcpc's hook (this binary).
    pub hook: PathBuf,
    /// The shares this boot mounted.
    pub shares: Vec<Share>,
    /// How long `resumed` keeps trying a share whose device is not back
    /// ([`crate::wire::control::REMOUNT_FOR`] at boot; shorter in tests).
    pub remount_for: Duration,
    /// The NIC on a private network (no DHCP; its peers in /etc/hosts).
    pub private: Option<PrivateNic>,
}

/// Why a request was not carried out; the host is sent its text.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("share {share} is in use in the guest ({source}): stop the containers that mount it, or `b2d stop` instead")]
    ShareInUse {
        share: String,
        #[source]
        source: std::io::Error,
    },
    #[error("this machine is not on the network {0}")]
    OtherNetwork(String),
    #[error(transparent)]
    Hosts(#[from] super::private_network::LanError),
    #[error("cannot set the clock: {0}")]
    Clock(#[source] std::io::Error),
    #[error(transparent)]
    Remount(#[from] super::shares::ShareError),
    /// Several of the above, in the order they happened.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<ControlError>),
}

/// What a suspend left to undo.
#[derive(Debug, Default)]
pub struct State {
    unmounted: Vec<Share>,
}

/// Carry out one request.
pub fn handle(sys: &dyn Sys, c: &Control, st: &mut State, req: &Request) -> Reply {
    let mut r = Reply {
        id: req.id,
        ..Default::default()
    };
    let outcome = match &req.op {
        Op::Suspend => suspend(sys, c, st, &mut r.done),
        Op::Resumed { unix_ms } => resumed(sys, c, st, *unix_ms, &mut r.done),
        Op::Peers { network, peers } => peers_now(c, network, peers, &mut r.done),
    };
    r.error = outcome.err().map(|e| e.to_string());
    r
}

fn suspend(
    sys: &dyn Sys,
    c: &Control,
    st: &mut State,
    done: &mut Vec<String>,
) -> Result<(), ControlError> {
    sys.sync();
    done.push("page cache written to the disk".into());
    for s in &c.shares {
        if st.unmounted.contains(s) {
            continue;
        }
        let at = super::shares::target(&c.root, s);
        if let Err(source) = sys.umount(&at, false) {
            remount(sys, c, st, Duration::ZERO, done);
            return Err(ControlError::ShareInUse {
                share: s.path.clone(),
                source,
            });
        }
        st.unmounted.push(s.clone());
        done.push(format!("share {} unmounted", s.path));
    }
    // Clean pages need not be saved: the disk has them.
    sys.sync();
    match std::fs::write(c.proc_root.join("sys/vm/drop_caches"), "1") {
        Ok(()) => done.push("clean page cache dropped".into()),
        Err(e) => log::warn!("suspend: cannot drop the page cache: {e}"),
    }
    Ok(())
}

/// The machines on this guest's private network now: /etc/hosts names
/// them.
fn peers_now(
    c: &Control,
    network: &str,
    peers: &[Peer],
    done: &mut Vec<String>,
) -> Result<(), ControlError> {
    match &c.private {
        Some(n) if n.network == network => {}
        _ => return Err(ControlError::OtherNetwork(network.into())),
    }
    let n = super::private_network::rewrite_hosts(&c.root.join("etc"), network, peers)?;
    done.push(format!(
        "/etc/hosts names the {n} other machines on {network}"
    ));
    Ok(())
}

fn resumed(
    sys: &dyn Sys,
    c: &Control,
    st: &mut State,
    unix_ms: u64,
    done: &mut Vec<String>,
) -> Result<(), ControlError> {
    let mut errors = Vec::new();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    match sys.set_clock(unix_ms) {
        Ok(()) => done.push(format!(
            "clock stepped {} s {}",
            unix_ms.abs_diff(before) / 1000,
            if unix_ms >= before { "forward" } else { "back" }
        )),
        Err(e) => errors.push(ControlError::Clock(e)),
    }
    errors.extend(remount(sys, c, st, c.remount_for, done));
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(ControlError::Several(errors)),
    }
}

/// Renew each link's DHCP lease (after a resume, once [`RENEW_AFTER`]
/// has passed: a resumed QEMU has translated none of the guest's code
/// yet under TCG, and the user's first commands should not share the
/// CPU with udhcpc and its hooks).
pub fn renew_leases(sys: &dyn Sys, c: &Control) {
    let class_net = c.sys_root.join("class/net");
    for l in super::private_network::split_links(&class_net, c.private.as_ref()).0 {
        let args = super::network::udhcpc_args(&l, &c.hook, 3);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        match sys.spawn("busybox", &argv, &[super::network::RENEW_ENV]) {
            Ok(()) => log::info!("control: {l}: DHCP lease renewal started"),
            Err(e) => log::warn!("control: {l}: cannot renew the DHCP lease: {e}"),
        }
    }
}

/// How long after a resume the leases are renewed.
pub const RENEW_AFTER: Duration = Duration::from_secs(5);

/// Mount again what a suspend unmounted, trying each for up to `patience`;
/// returns what failed.
fn remount(
    sys: &dyn Sys,
    c: &Control,
    st: &mut State,
    patience: Duration,
    done: &mut Vec<String>,
) -> Vec<ControlError> {
    let start = Instant::now();
    let mut failed = Vec::new();
    for s in std::mem::take(&mut st.unmounted) {
        loop {
            match super::shares::mount_one(sys, &c.root, &s) {
                Ok(_) => {
                    done.push(format!("share {} mounted again", s.path));
                    break;
                }
                Err(e) if start.elapsed() >= patience => {
                    failed.push(ControlError::Remount(e));
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    failed
}

/// Answer requests forever (a thread of PID 1); without the port (not a
/// b2d-made QEMU machine) it says so once and ends.
pub fn run(sys: &dyn Sys, c: &Control) {
    let Some((file, _)) = open_port(
        &c.sys_root,
        &c.dev_root,
        CHANNEL,
        "control",
        "this machine cannot be suspended",
    ) else {
        return;
    };
    let mut st = State::default();
    let mut reader = BufReader::new(&file);
    loop {
        if reader.buffer().is_empty() && !host_sent(&file) {
            // Hung up (no host on the other end) polls at once: pace it.
            std::thread::sleep(Duration::from_millis(250));
            continue;
        }
        let mut line = String::new();
        match (&mut reader).take(MAX_LINE as u64 + 1).read_line(&mut line) {
            Ok(0) | Err(_) => continue,
            Ok(_) => {}
        }
        let Some(req) = Request::parse(&line) else {
            continue;
        };
        log::info!(
            "control: {}",
            match req.op {
                Op::Suspend => "the host suspends this machine",
                Op::Resumed { .. } => "the host resumed this machine",
                Op::Peers { .. } => "the machines on this machine's network changed",
            }
        );
        let reply = handle(sys, c, &mut st, &req);
        match &reply.error {
            None => log::info!("control: {}", reply.done.join(", ")),
            Some(e) => log::warn!("control: {e}"),
        }
        if let Err(e) = (&file).write_all(reply.line().as_bytes()) {
            log::warn!("control: cannot answer the host: {e}");
        }
        if matches!(req.op, Op::Resumed { .. }) {
            std::thread::sleep(RENEW_AFTER);
            renew_leases(sys, c);
        }
    }
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
