//! The port watch's reading of `/proc`: which TCP and UDP sockets listen
//! on an address other than loopback (`/proc/net/{tcp,tcp6,udp,udp6}`),
//! and which program holds each (`/proc/*/fd`, walked only for a
//! listener not named before).

use crate::wire::ports::{announced, Listener, PortsMsg, Proto, SWARM_MANAGEMENT};
use procfs_core::net::{TcpNetEntries, TcpState, UdpNetEntries, UdpState};
use procfs_core::{ExplicitSystemInfo, FromReadSI};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// UDP ports of the agent's own (the DHCP client), never announced.
const RESERVED_UDP: &[u16] = &[68];

fn system_info() -> ExplicitSystemInfo {
    ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: 100,
        page_size: 4096,
        is_little_endian: cfg!(target_endian = "little"),
    }
}

/// Whether a listener on `addr` is reachable from outside the guest.
fn outside(addr: &SocketAddr) -> bool {
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    !ip.is_loopback()
}

/// A socket found listening: its port, protocol and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Sock {
    proto: Proto,
    port: u16,
    inode: u64,
    ip: IpAddr,
}

/// The listening sockets of the protocols in `which` under
/// `proc_root/net` (an absent or unreadable table, e.g. IPv6 disabled,
/// counts as empty).
fn sockets(proc_root: &Path, which: &[Proto]) -> Vec<Sock> {
    let si = system_info();
    let net = proc_root.join("net");
    let mut out = Vec::new();
    let tcp: &[&str] = if which.contains(&Proto::Tcp) {
        &["tcp", "tcp6"]
    } else {
        &[]
    };
    let udp: &[&str] = if which.contains(&Proto::Udp) {
        &["udp", "udp6"]
    } else {
        &[]
    };
    for name in tcp {
        let Ok(f) = std::fs::File::open(net.join(name)) else {
            continue;
        };
        if let Ok(TcpNetEntries(entries)) = TcpNetEntries::from_read(f, &si) {
            out.extend(
                entries
                    .iter()
                    .filter(|e| e.state == TcpState::Listen && outside(&e.local_address))
                    .map(|e| Sock {
                        proto: Proto::Tcp,
                        port: e.local_address.port(),
                        inode: e.inode,
                        ip: e.local_address.ip(),
                    }),
            );
        }
    }
    for name in udp {
        let Ok(f) = std::fs::File::open(net.join(name)) else {
            continue;
        };
        if let Ok(UdpNetEntries(entries)) = UdpNetEntries::from_read(f, &si) {
            // An unconnected bound UDP socket shows as state 07 (close).
            out.extend(
                entries
                    .iter()
                    .filter(|e| e.state == UdpState::Close && outside(&e.local_address))
                    .filter(|e| !RESERVED_UDP.contains(&e.local_address.port()))
                    .map(|e| Sock {
                        proto: Proto::Udp,
                        port: e.local_address.port(),
                        inode: e.inode,
                        ip: e.local_address.ip(),
                    }),
            );
        }
    }
    out.retain(|s| s.port != 0);
    out
}

/// Socket inode → the `comm` of a process holding it, for the inodes in
/// `want` (a walk of `/proc/*/fd`: see [`Owners`]).
fn owners(proc_root: &Path, want: &BTreeSet<u64>) -> BTreeMap<u64, String> {
    let mut found = BTreeMap::new();
    let Ok(procs) = std::fs::read_dir(proc_root) else {
        return found;
    };
    for p in procs.flatten() {
        let dir = p.path();
        if !p
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            let Some(inode) = t
                .strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if want.contains(&inode) && !found.contains_key(&inode) {
                let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
                found.insert(inode, comm.trim().to_string());
            }
        }
        if found.len() == want.len() {
            break;
        }
    }
    found
}

/// The listeners' programs, kept from one round of the watch to the next.
/// A socket keeps its owner while it listens, so `/proc/*/fd` is walked
/// only when a listener appears that was not named before. Walked every
/// round, it cost up to about 70 ms of guest CPU under TCG twice a
/// second, and a TCG boot waits on the guest's CPU.
#[derive(Debug, Default)]
pub struct Owners(BTreeMap<u64, String>);

impl Owners {
    /// The names of the sockets in `inodes` ("" for one without a process
    /// found); forgets those that no longer listen.
    fn of(&mut self, proc_root: &Path, inodes: &BTreeSet<u64>) -> &BTreeMap<u64, String> {
        self.0.retain(|i, _| inodes.contains(i));
        let new: BTreeSet<u64> = inodes
            .iter()
            .filter(|i| !self.0.contains_key(i))
            .copied()
            .collect();
        if !new.is_empty() {
            let mut found = owners(proc_root, &new);
            for i in new {
                self.0.insert(i, found.remove(&i).unwrap_or_default());
            }
        }
        &self.0
    }
}

/// The current set of outside listeners under `proc_root`, one entry a
/// (protocol, port), with the listening program's name when known.
pub fn scan(proc_root: &Path) -> PortsMsg {
    scan_node(proc_root, &mut Owners::default()).0
}

/// [`scan`], and whether this node is a swarm manager (it listens on
/// swarm's cluster management port; workers do not).
pub fn scan_node(proc_root: &Path, owners: &mut Owners) -> (PortsMsg, bool) {
    let mut socks = sockets(proc_root, &[Proto::Tcp, Proto::Udp]);
    let manager = socks
        .iter()
        .any(|s| s.proto == Proto::Tcp && s.port == SWARM_MANAGEMENT);
    socks.retain(|s| announced(s.proto, s.port));
    let inodes: BTreeSet<u64> = socks.iter().map(|s| s.inode).collect();
    let names = owners.of(proc_root, &inodes);
    let mut ports: Vec<Listener> = socks
        .iter()
        .map(|s| Listener {
            proto: s.proto,
            port: s.port,
            by: names.get(&s.inode).filter(|n| !n.is_empty()).cloned(),
        })
        .collect();
    ports.sort();
    // One entry a (protocol, port): 0.0.0.0 and :: both listening, keeping
    // whichever name was found.
    ports.dedup_by(|next, kept| {
        let same = next.proto == kept.proto && next.port == kept.port;
        if same && kept.by.is_none() {
            kept.by = next.by.take();
        }
        same
    });
    (PortsMsg { ports }, manager)
}

/// The addresses TCP `port` listens on outside loopback now (0.0.0.0 or
/// :: for a wildcard listener): where the tunnel connects to.
pub fn tcp_listen_addrs(proc_root: &Path, port: u16) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = sockets(proc_root, &[Proto::Tcp])
        .into_iter()
        .filter(|s| s.port == port)
        .map(|s| s.ip)
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:4E98 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 100 0 0 10 0
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 100 0 0 10 0
   3: 0F02000A:0050 0202000A:C350 01 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 100 0 0 10 0
   4: 0F02000A:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1005 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0948 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0949 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 100 0 0 10 0
   2: 00000000000000000000000000000000:4E98 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2003 1 0000000000000000 100 0 0 10 0
";
    const UDP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  10: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3001 2 0000000000000000 0
  11: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3002 2 0000000000000000 0
  12: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3003 2 0000000000000000 0
  13: 00000000:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 0 2 0000000000000000 0
";

    fn proc_tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let net = t.path().join("net");
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(net.join("tcp"), TCP).unwrap();
        std::fs::write(net.join("tcp6"), TCP6).unwrap();
        std::fs::write(net.join("udp"), UDP).unwrap();
        // No udp6: IPv6 UDP table absent counts as empty.
        let p = t.path().join("4242");
        std::fs::create_dir_all(p.join("fd")).unwrap();
        std::fs::write(p.join("comm"), "docker-proxy\n").unwrap();
        std::os::unix::fs::symlink("socket:[1001]", p.join("fd/3")).unwrap();
        std::os::unix::fs::symlink("/dev/null", p.join("fd/0")).unwrap();
        t
    }

    #[test]
    fn outside_listeners_only_with_their_program() {
        let t = proc_tree();
        let got: Vec<(Proto, u16, Option<String>)> = scan(t.path())
            .ports
            .into_iter()
            .map(|l| (l.proto, l.port, l.by))
            .collect();
        assert_eq!(
            got,
            vec![
                (Proto::Tcp, 8081, None),
                // On 0.0.0.0 (docker-proxy's) and on :: — one entry.
                (Proto::Tcp, 20120, Some("docker-proxy".to_string())),
                (Proto::Udp, 5353, None),
            ]
        );
    }

    #[test]
    fn loopback_reserved_and_connected_sockets_are_left_out() {
        let t = proc_tree();
        let ports: Vec<u16> = scan(t.path()).ports.iter().map(|l| l.port).collect();
        // 4789: the kernel's VXLAN socket of a swarm node (no owner).
        for p in [8080, 2377, 22, 80, 68, 53, 4789] {
            assert!(!ports.contains(&p), "{p} in {ports:?}");
        }
        assert_eq!(scan(Path::new("/nonexistent")).ports, vec![]);
    }

    #[test]
    fn a_node_listening_on_swarm_s_management_port_is_a_manager() {
        let t = proc_tree();
        assert!(
            !scan_node(t.path(), &mut Owners::default()).1,
            "2377 only on loopback here"
        );
        let tcp = std::fs::read_to_string(t.path().join("net/tcp")).unwrap()
            + "   5: 00000000:0949 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1006 1 0000000000000000 100 0 0 10 0\n";
        std::fs::write(t.path().join("net/tcp"), tcp).unwrap();
        let (msg, manager) = scan_node(t.path(), &mut Owners::default());
        assert!(manager);
        assert!(!msg.ports.iter().any(|l| l.port == 2377), "never announced");
    }

    #[test]
    fn programs_are_looked_up_once_per_listener() {
        let t = proc_tree();
        let mut owners = Owners::default();
        let by =
            |m: &PortsMsg, port: u16| m.ports.iter().find(|l| l.port == port).unwrap().by.clone();
        let first = scan_node(t.path(), &mut owners).0;
        assert_eq!(by(&first, 20120).as_deref(), Some("docker-proxy"));
        // Its process gone from /proc: the next round names it all the
        // same, so it did not walk /proc again.
        std::fs::remove_dir_all(t.path().join("4242")).unwrap();
        assert_eq!(scan_node(t.path(), &mut owners).0, first);
        // A listener not seen before is looked up.
        let p = t.path().join("4343");
        std::fs::create_dir_all(p.join("fd")).unwrap();
        std::fs::write(p.join("comm"), "nginx\n").unwrap();
        std::os::unix::fs::symlink("socket:[1007]", p.join("fd/5")).unwrap();
        let tcp = std::fs::read_to_string(t.path().join("net/tcp")).unwrap()
            + "   6: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1007 1 0000000000000000 100 0 0 10 0\n";
        std::fs::write(t.path().join("net/tcp"), tcp).unwrap();
        let third = scan_node(t.path(), &mut owners).0;
        assert_eq!(by(&third, 8080).as_deref(), Some("nginx"));
        assert_eq!(by(&third, 20120).as_deref(), Some("docker-proxy"));
        // A fresh watch finds neither name for the process that is gone.
        assert_eq!(by(&scan(t.path()), 20120), None);
    }

    #[test]
    fn listen_addresses_of_one_port() {
        let t = proc_tree();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            tcp_listen_addrs(t.path(), 20120),
            vec![ip("0.0.0.0"), ip("::")]
        );
        assert_eq!(tcp_listen_addrs(t.path(), 8081), vec![ip("10.0.2.15")]);
        assert!(tcp_listen_addrs(t.path(), 8080).is_empty(), "loopback only");
        assert!(
            tcp_listen_addrs(t.path(), 5353).is_empty(),
            "UDP is not dialled"
        );
    }

    #[test]
    fn the_real_proc_parses() {
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let m = scan(Path::new("/proc"));
        assert!(
            m.ports
                .iter()
                .any(|p| p.proto == Proto::Tcp && p.port == port),
            "{port} not in {m:?}"
        );
        let me = m.ports.iter().find(|p| p.port == port).unwrap();
        assert!(me.by.is_some(), "the test process owns {port}");
    }
}
