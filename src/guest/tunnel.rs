//! The guest end of forwarded TCP ports: a thread of PID 1 that answers
//! the host agent's streams on the tunnel port ([`crate::wire::tunnel`])
//! by connecting to the guest's own listener on the same port.
//!
//! A wildcard listener is reached at the guest's own address on its
//! default route first, as QEMU's user network reached it, so Docker's
//! NAT rules for published ports apply; then at loopback. A listener on
//! one address is reached there.

use super::portwatch::{tcp_listen_addrs, Watch};
use super::virtio_port::{host_sent, open_port};
use crate::mux::Mux;
use crate::wire::tunnel::CHANNEL;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

const CONNECT: Duration = Duration::from_secs(2);

/// The gateway of the default IPv4 route in `proc_root/net/route`.
fn default_gateway(proc_root: &Path) -> Option<Ipv4Addr> {
    let text = std::fs::read_to_string(proc_root.join("net/route")).ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 || f[1] != "00000000" {
            return None;
        }
        let gw = u32::from_str_radix(f[2], 16).ok()?;
        // The table prints the address in host (little-endian) order.
        Some(Ipv4Addr::from(gw.swap_bytes())).filter(|a| !a.is_unspecified())
    })
}

/// This guest's address towards `gateway` (no packet is sent).
fn own_address(gateway: Ipv4Addr) -> Option<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect((gateway, 9)).ok()?;
    Some(s.local_addr().ok()?.ip())
}

/// Where to connect for a port listening on `addrs`, in order.
pub fn targets(addrs: &[IpAddr], own: Option<IpAddr>) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let wildcard = addrs.is_empty() || addrs.iter().any(|a| a.is_unspecified());
    if wildcard {
        out.extend(own);
        out.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        out.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
    }
    out.extend(addrs.iter().filter(|a| !a.is_unspecified()));
    out.dedup();
    out
}

fn dial(proc_root: &Path, port: u16) -> io::Result<TcpStream> {
    let addrs = tcp_listen_addrs(proc_root, port);
    let own = default_gateway(proc_root).and_then(own_address);
    let mut last = io::Error::from(io::ErrorKind::ConnectionRefused);
    for ip in targets(&addrs, own) {
        match TcpStream::connect_timeout(&SocketAddr::new(ip, port), CONNECT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Serve the tunnel forever (a thread of PID 1). Without the port (not a
/// b2d-made QEMU machine) it says so once and ends.
pub fn run(w: &Watch) {
    let Some((file, dev)) = open_port(
        &w.sys_root,
        &w.dev_root,
        CHANNEL,
        "tunnel",
        "forwarded TCP ports will not answer",
    ) else {
        return;
    };
    let out = match file.try_clone() {
        Ok(f) => f,
        Err(e) => {
            log::warn!("tunnel: {}: {e}", dev.display());
            return;
        }
    };
    let proc_root = w.proc_root.clone();
    let mux = Mux::new(Some(Box::new(move |port| dial(&proc_root, port))), 0);
    mux.connect(Box::new(out));
    log::info!("tunnel: serving forwarded TCP ports on {}", dev.display());
    loop {
        if !host_sent(&file) {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        if let Err(e) = mux.serve(&mut &file) {
            // Out of step: skip what is left until the host reconnects.
            log::warn!("tunnel: {e}; waiting for the host agent to reconnect");
            let mut sink = [0u8; 4096];
            while matches!(io::Read::read(&mut &file, &mut sink), Ok(n) if n > 0) {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_gateway_comes_from_the_route_table() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("net")).unwrap();
        std::fs::write(
            t.path().join("net/route"),
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
             eth0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
        )
        .unwrap();
        assert_eq!(default_gateway(t.path()), Some(Ipv4Addr::new(10, 0, 2, 2)));
        std::fs::write(t.path().join("net/route"), "Iface\tDestination\n").unwrap();
        assert_eq!(default_gateway(t.path()), None);
    }

    #[test]
    fn wildcard_listeners_are_reached_at_the_own_address_then_loopback() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let own = Some(ip("10.0.2.15"));
        assert_eq!(
            targets(&[ip("0.0.0.0"), ip("::")], own),
            vec![ip("10.0.2.15"), ip("127.0.0.1"), ip("::1")]
        );
        assert_eq!(targets(&[ip("172.17.0.1")], own), vec![ip("172.17.0.1")]);
        // Gone from the table already (or not yet in it): try the usual.
        assert_eq!(targets(&[], None), vec![ip("127.0.0.1"), ip("::1")]);
    }

    #[test]
    fn dials_a_real_listener_on_this_host() {
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let s = dial(Path::new("/proc"), port).unwrap();
        let (accepted, _) = l.accept().unwrap();
        assert_eq!(s.peer_addr().unwrap().port(), port);
        drop(accepted);
    }
}
