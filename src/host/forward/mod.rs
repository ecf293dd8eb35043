//! The host agent: a detached `b2d` process per running machine that
//! reads the guest's listening ports from the virtio-serial channel (see
//! [`crate::wire::ports`]) and forwards each to the same port on the
//! host's 127.0.0.1: a TCP port through a listener of its own and the
//! tunnel channel ([`crate::host::forward::listeners`]), a UDP port through QMP
//! `hostfwd_add` / `hostfwd_remove` on the user network. It lives as long
//! as the machine's QEMU; `b2d up` starts it and starts it again if it is
//! missing.
//!
//! What is forwarded, and what was skipped and why, is kept in the
//! machine's `ports.json` (written atomically after every change), which
//! `b2d ports` shows and a restarted agent takes over from. Every change
//! is also one line in `agent.log`.
//!
//! [`listeners`]: the TCP listeners and the host end of the tunnel;
//! [`fixed`]: the ssh and Docker API forwards every machine has, on
//! free 127.0.0.1 ports kept in `config.json`.

pub mod fixed;
pub mod listeners;

use crate::wire::ports::{Listener, PortsMsg, Proto, MAX_LINE};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, BufRead};

/// Why a port is not forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub proto: Proto,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub reason: String,
}

/// `ports.json`: the forwards in place on QEMU `pid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct State {
    pub pid: u32,
    pub active: Vec<Listener>,
    pub skipped: Vec<Skipped>,
}

/// How forwards are made: QMP in production, a recorder in tests.
pub trait Forwarder {
    /// Whether 127.0.0.1:`port` can be had on the host; the reason if not.
    fn available(&mut self, proto: Proto, port: u16) -> Result<(), ForwardError>;
    fn add(&mut self, proto: Proto, port: u16) -> Result<(), ForwardError>;
    fn remove(&mut self, proto: Proto, port: u16) -> Result<(), ForwardError>;
}

/// Why a port is not forwarded, or a forward not removed: what
/// `ports.json` keeps as a [`Skipped`] reason and the log says.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// 127.0.0.1:`port` could not be bound on the host.
    #[error("{}", bind_refused(*proto, *port, error))]
    Refused {
        proto: Proto,
        port: u16,
        error: io::Error,
    },
    /// Another machine of the store forwards it already.
    #[error("127.0.0.1:{port}/{proto} already forwards to machine \"{other}\"")]
    OtherMachine {
        proto: Proto,
        port: u16,
        other: String,
    },
    /// QEMU's monitor refused the `hostfwd` command, in its words.
    #[error("QEMU: {0}")]
    Qemu(String),
    /// QEMU's monitor could not be reached.
    #[error(transparent)]
    Qmp(#[from] io::Error),
}

/// What changed in one reconciliation, for the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    pub added: Vec<Listener>,
    pub removed: Vec<Listener>,
    pub skipped: Vec<Skipped>,
    /// Removals QEMU refused (the forward may linger).
    pub failed: Vec<String>,
}

type Key = (Proto, u16);

fn key(l: &Listener) -> Key {
    (l.proto, l.port)
}

/// Bring `state` to `want`: remove forwards whose listener went away, add
/// the new ones the host can give, remember the rest as skipped. A port
/// skipped before is tried again each time (the host program holding it
/// may have quit).
pub fn reconcile(state: &mut State, want: &PortsMsg, fw: &mut dyn Forwarder) -> Changes {
    let mut ch = Changes::default();
    let wanted: BTreeMap<Key, &Listener> = want.ports.iter().map(|l| (key(l), l)).collect();
    let mut kept = Vec::new();
    for l in std::mem::take(&mut state.active) {
        if wanted.contains_key(&key(&l)) {
            kept.push(l);
            continue;
        }
        match fw.remove(l.proto, l.port) {
            Ok(()) => ch.removed.push(l),
            Err(e) => ch.failed.push(format!("{}/{}: {e}", l.port, l.proto)),
        }
    }
    let mut skipped_now = Vec::new();
    for (k, l) in &wanted {
        if let Some(existing) = kept.iter_mut().find(|a| key(a) == *k) {
            existing.by = l.by.clone();
            continue;
        }
        let result = fw.available(k.0, k.1).and_then(|()| fw.add(k.0, k.1));
        match result {
            Ok(()) => {
                ch.added.push((*l).clone());
                kept.push((*l).clone());
            }
            Err(e) => {
                let s = Skipped {
                    proto: k.0,
                    port: k.1,
                    by: l.by.clone(),
                    reason: e.to_string(),
                };
                if !state.skipped.contains(&s) {
                    ch.skipped.push(s.clone());
                }
                skipped_now.push(s);
            }
        }
    }
    kept.sort();
    state.active = kept;
    state.skipped = skipped_now;
    ch
}

/// The lowest port an ordinary user may bind here.
fn unprivileged_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

/// Why 127.0.0.1:`port` cannot be bound now, if it cannot.
pub fn host_port_taken(proto: Proto, port: u16) -> Option<io::Error> {
    let r = match proto {
        Proto::Tcp => std::net::TcpListener::bind(("127.0.0.1", port)).map(drop),
        Proto::Udp => std::net::UdpSocket::bind(("127.0.0.1", port)).map(drop),
    };
    r.err()
}

/// Why binding 127.0.0.1:`port` failed, for `b2d ports` and the log.
pub fn bind_refused(proto: Proto, port: u16, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => {
            format!("127.0.0.1:{port}/{proto} is in use by another program on the host")
        }
        io::ErrorKind::PermissionDenied => format!(
            "ports below {} need root on this host (net.ipv4.ip_unprivileged_port_start); \
             publish a higher port, e.g. -p {}:{port}",
            unprivileged_start(),
            u32::from(port) + 8000
        ),
        _ => format!("127.0.0.1:{port}/{proto}: {e}"),
    }
}

/// The `hostfwd_add`/`hostfwd_remove` rule for a forward on the user
/// netdev `netdev`.
pub fn hostfwd_add(netdev: &str, proto: Proto, port: u16) -> String {
    format!("hostfwd_add {netdev} {proto}:127.0.0.1:{port}-:{port}")
}

pub fn hostfwd_remove(netdev: &str, proto: Proto, port: u16) -> String {
    format!("hostfwd_remove {netdev} {proto}:127.0.0.1:{port}")
}

/// One line per change for `agent.log`.
pub fn log_lines(ch: &Changes) -> Vec<String> {
    let name = |by: &Option<String>| by.as_deref().map(|b| format!(" ({b})")).unwrap_or_default();
    let mut out = Vec::new();
    for l in &ch.added {
        out.push(format!(
            "forwarding 127.0.0.1:{p}/{} to the guest's {p}{}",
            l.proto,
            name(&l.by),
            p = l.port
        ));
    }
    for l in &ch.removed {
        out.push(format!(
            "stopped forwarding {}/{}: no longer listening",
            l.port, l.proto
        ));
    }
    for s in &ch.skipped {
        out.push(format!(
            "not forwarding {}/{}{}: {}",
            s.port,
            s.proto,
            name(&s.by),
            s.reason
        ));
    }
    for f in &ch.failed {
        out.push(format!("could not remove the forward of {f}"));
    }
    out
}

/// Read one line of at most [`MAX_LINE`] bytes into `buf` (kept across
/// read timeouts). Ok(true): a whole line is in `buf`; Ok(false): not yet.
pub fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(Some(false))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(None); // EOF
        }
        let (chunk, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..=i], true),
            None => (avail, false),
        };
        let n = chunk.len();
        if buf.first() == Some(&0) {
            // Discarding the rest of an overlong line.
        } else if buf.len() + n <= MAX_LINE + 1 {
            buf.extend_from_slice(chunk);
        } else {
            buf.clear();
            buf.push(0); // marks an overlong line: it will not parse
        }
        r.consume(n);
        if done {
            return Ok(Some(true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    #[derive(Default)]
    struct Rec {
        taken: Vec<Key>,
        calls: Vec<String>,
    }

    impl Forwarder for Rec {
        fn available(&mut self, proto: Proto, port: u16) -> Result<(), ForwardError> {
            if self.taken.contains(&(proto, port)) {
                Err(ForwardError::Refused {
                    proto,
                    port,
                    error: io::ErrorKind::AddrInUse.into(),
                })
            } else {
                Ok(())
            }
        }
        fn add(&mut self, proto: Proto, port: u16) -> Result<(), ForwardError> {
            self.calls.push(hostfwd_add("n0", proto, port));
            Ok(())
        }
        fn remove(&mut self, proto: Proto, port: u16) -> Result<(), ForwardError> {
            self.calls.push(hostfwd_remove("n0", proto, port));
            Ok(())
        }
    }

    fn msg(ports: &[(Proto, u16)]) -> PortsMsg {
        PortsMsg {
            ports: ports
                .iter()
                .map(|&(proto, port)| Listener {
                    proto,
                    port,
                    by: None,
                })
                .collect(),
        }
    }

    #[test]
    fn adds_new_removes_gone_and_keeps_the_rest() {
        let mut st = State::default();
        let mut fw = Rec::default();
        let ch = reconcile(
            &mut st,
            &msg(&[(Proto::Tcp, 8080), (Proto::Udp, 5353)]),
            &mut fw,
        );
        assert_eq!(ch.added.len(), 2);
        assert_eq!(
            fw.calls,
            vec![
                "hostfwd_add n0 tcp:127.0.0.1:8080-:8080",
                "hostfwd_add n0 udp:127.0.0.1:5353-:5353"
            ]
        );
        fw.calls.clear();
        let ch = reconcile(
            &mut st,
            &msg(&[(Proto::Tcp, 8080), (Proto::Tcp, 9090)]),
            &mut fw,
        );
        assert_eq!(
            fw.calls,
            vec![
                "hostfwd_remove n0 udp:127.0.0.1:5353",
                "hostfwd_add n0 tcp:127.0.0.1:9090-:9090"
            ]
        );
        assert_eq!((ch.added.len(), ch.removed.len()), (1, 1));
        fw.calls.clear();
        // The same set again changes nothing.
        let ch = reconcile(
            &mut st,
            &msg(&[(Proto::Tcp, 8080), (Proto::Tcp, 9090)]),
            &mut fw,
        );
        assert!(fw.calls.is_empty());
        assert_eq!(ch, Changes::default());
        assert_eq!(st.active.len(), 2);
    }

    #[test]
    fn a_taken_port_is_skipped_with_its_reason_once_and_retried() {
        let mut st = State::default();
        let mut fw = Rec {
            taken: vec![(Proto::Tcp, 80)],
            ..Default::default()
        };
        let ch = reconcile(&mut st, &msg(&[(Proto::Tcp, 80)]), &mut fw);
        assert_eq!(ch.skipped.len(), 1);
        assert_eq!(
            st.skipped[0].reason,
            "127.0.0.1:80/tcp is in use by another program on the host"
        );
        assert!(st.active.is_empty());
        // Logged once, still listed.
        let ch = reconcile(&mut st, &msg(&[(Proto::Tcp, 80)]), &mut fw);
        assert!(ch.skipped.is_empty());
        assert_eq!(st.skipped.len(), 1);
        // Freed on the host: the next round forwards it.
        fw.taken.clear();
        let ch = reconcile(&mut st, &msg(&[(Proto::Tcp, 80)]), &mut fw);
        assert_eq!(ch.added.len(), 1);
        assert!(st.skipped.is_empty());
        // Gone in the guest: nothing skipped stays behind either.
        reconcile(&mut st, &msg(&[]), &mut fw);
        assert!(st.active.is_empty() && st.skipped.is_empty());
    }

    #[test]
    fn host_port_check_names_the_reason() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let e = bind_refused(
            Proto::Tcp,
            port,
            &host_port_taken(Proto::Tcp, port).unwrap(),
        );
        assert!(e.contains("in use by another program"), "{e}");
        drop(l);
        assert!(host_port_taken(Proto::Tcp, port).is_none());
        let lines = log_lines(&Changes {
            skipped: vec![Skipped {
                proto: Proto::Tcp,
                port,
                by: Some("docker-proxy".into()),
                reason: e,
            }],
            ..Default::default()
        });
        assert!(lines[0].starts_with(&format!(
            "not forwarding {port}/tcp (docker-proxy): 127.0.0.1"
        )));
    }

    #[test]
    fn lines_are_read_whole_and_overlong_ones_dropped() {
        let long = "x".repeat(MAX_LINE + 10);
        let input = format!("{{\"ports\":[]}}\n{long}\nlast\n");
        let mut r = BufReader::with_capacity(1024, Cursor::new(input.into_bytes()));
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), Some(true));
        assert_eq!(buf, b"{\"ports\":[]}\n");
        buf.clear();
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), Some(true));
        assert_eq!(buf, [0], "an overlong line is dropped, not kept");
        assert!(PortsMsg::parse(&String::from_utf8_lossy(&buf)).is_none());
        buf.clear();
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), Some(true));
        assert_eq!(buf, b"last\n");
        buf.clear();
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), None);
    }
}
