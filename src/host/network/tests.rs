use super::*;
use crate::host::store::saved_sample;

fn store(t: &Path) -> Store {
    Store::at(t.to_path_buf())
}

/// Machine `name` saved in `s`, on `network` at host number `host` (if
/// any).
fn on(s: &Store, name: &str, network: Option<(&str, u8)>) -> Machine {
    let mut m = crate::host::store::sample(s.dir(name));
    m.name = name.into();
    m.config.network = network.map(|(n, host)| {
        let [a, b, c, _] = subnet(n).octets();
        Attachment {
            name: n.into(),
            address: Ipv4Addr::new(a, b, c, host),
        }
    });
    std::fs::create_dir_all(&m.dir).unwrap();
    m.save_config().unwrap();
    m
}

#[test]
fn network_names_and_none() {
    assert_eq!(parse_arg("lab").unwrap(), Some("lab".to_string()));
    assert_eq!(parse_arg("none").unwrap(), None);
    let e = parse_arg("my lab").unwrap_err().to_string();
    assert_eq!(
        e,
        "--network my lab: not a network name: use 1-63 letters, digits and '-' (e.g. --network lab), or --network none"
    );
    crate::assert_readable(&e);
}

#[test]
fn a_network_s_subnet_is_stable_private_and_clear_of_common_ones() {
    assert_eq!(subnet("lab"), subnet("lab"));
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..2000 {
        let n = subnet(&format!("net{i}"));
        let [a, b, c, d] = n.octets();
        assert_eq!((a, b, d), (192, 168, 0), "{n}");
        assert!(SUBNETS.contains(&c) && !AVOID.contains(&c), "{n}");
        seen.insert(c);
    }
    // The whole range is used, not a few subnets.
    assert_eq!(seen.len(), SUBNETS.count() - AVOID.len());
}

#[test]
fn a_segment_belongs_to_one_user_and_one_store() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let s = segment("lab", 1000, &a);
    assert_eq!(s, segment("lab", 1000, &a), "stable");
    for other in [
        segment("lab", 1001, &a),
        segment("lab", 1000, &b),
        segment("lab2", 1000, &a),
    ] {
        assert_ne!((s.group, s.port), (other.group, other.port));
    }
    // The same store reached through a symlink is the same segment.
    std::os::unix::fs::symlink(&a, t.path().join("link")).unwrap();
    assert_eq!(segment("lab", 1000, &t.path().join("link")), s);
    for i in 0..500 {
        let g = segment(&format!("n{i}"), i, &a);
        let [x, y, _, z] = g.group.octets();
        assert_eq!(x, 239);
        assert!((64..192).contains(&y) && z != 0 && z != 255, "{g}");
        assert!((20000..32000).contains(&g.port), "{g}");
    }
    assert_eq!(
        Segment {
            group: Ipv4Addr::new(239, 70, 1, 2),
            port: 21000
        }
        .to_string(),
        "239.70.1.2:21000"
    );
}

#[test]
fn a_mac_is_local_unicast_and_ends_in_the_address() {
    let m = mac("lab", "lab", Ipv4Addr::new(192, 168, 140, 3));
    let b = crate::wire::network::parse_mac(&m).unwrap();
    assert_eq!((b[0], b[1]), (0x02, 0xb2));
    assert_eq!((b[4], b[5]), (140, 3));
    assert_eq!(m, mac("lab", "lab", Ipv4Addr::new(192, 168, 140, 3)));
    assert_ne!(m, mac("lab-2", "lab", Ipv4Addr::new(192, 168, 140, 3)));
}

#[test]
fn addresses_are_the_lowest_free_and_kept() {
    let t = tempfile::tempdir().unwrap();
    let s = store(t.path());
    let net = subnet("lab").octets();
    let host = |h: u8| Ipv4Addr::new(net[0], net[1], net[2], h);
    assert_eq!(allocate(&s, "a", "lab").unwrap(), host(1));
    on(&s, "a", Some(("lab", 1)));
    on(&s, "c", Some(("lab", 3)));
    on(&s, "x", Some(("other", 2)));
    on(&s, "plain", None);
    assert_eq!(allocate(&s, "b", "lab").unwrap(), host(2));
    assert_eq!(allocate(&s, "c", "lab").unwrap(), host(3), "its own kept");
    on(&s, "b", Some(("lab", 2)));
    assert_eq!(allocate(&s, "d", "lab").unwrap(), host(4));
    assert_eq!(
        members(&s, "lab")
            .unwrap()
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
}

#[test]
fn a_full_network_says_so() {
    let t = tempfile::tempdir().unwrap();
    let s = store(t.path());
    for h in 1..=254u8 {
        on(&s, &format!("m{h}"), Some(("lab", h)));
    }
    let e = allocate(&s, "one-more", "lab").unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "network lab: every address of {}/24 is taken",
            subnet("lab")
        )),
        "{e}"
    );
    assert!(e.contains("`b2d rm NAME`"), "{e}");
}

#[test]
fn the_guest_is_told_its_nic_and_the_others_as_peers() {
    let t = tempfile::tempdir().unwrap();
    let s = store(t.path());
    let a = on(&s, "lab", Some(("lab", 1)));
    on(&s, "lab-3", Some(("lab", 3)));
    on(&s, "lab-2", Some(("lab", 2)));
    on(&s, "elsewhere", Some(("other", 1)));
    let n = nic(&s, &a).unwrap();
    assert_eq!(n.network, "lab");
    assert_eq!(n.address, a.config.network.as_ref().unwrap().address);
    assert_eq!(n.prefix, 24);
    assert_eq!(crate::wire::network::nic_problem(&n), None);
    let names: Vec<&str> = n.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["lab-2", "lab-3"]);
    assert_eq!(nic(&s, &saved_sample(&s)), None);
}

#[test]
fn the_nic_is_a_multicast_socket_on_loopback_after_the_user_network() {
    let t = tempfile::tempdir().unwrap();
    let s = store(t.path());
    let m = on(&s, "lab", Some(("lab", 1)));
    let seg = segment_here("lab", &s);
    let a = qemu_args(&s, &m).join(" ");
    assert_eq!(
        a,
        format!(
            "-netdev socket,id=n1,mcast={seg},localaddr=127.0.0.1 -device virtio-net-pci,netdev=n1,mac={}",
            mac("lab", "lab", m.config.network.as_ref().unwrap().address)
        )
    );
    assert!(qemu_args(&s, &saved_sample(&s)).is_empty());
    let full = crate::host::vm::args(
        &m,
        crate::host::vm::accel::Accel::Tcg,
        &crate::host::shares::Plan::none(),
        crate::host::vm::Launch::Cold,
    )
    .join(" ");
    let user = full.find("-netdev user,id=n0").unwrap();
    assert!(full.find("-netdev socket,id=n1").unwrap() > user, "{full}");
}

/// What QEMU's `socket,mcast=…,localaddr=127.0.0.1` does (net/socket.c):
/// SO_REUSEADDR, bind to the group and port, join on 127.0.0.1, loop on,
/// send through 127.0.0.1. Two such sockets hear each other on this
/// host, which is what makes the segment work without a bridge or root.
#[test]
fn loopback_multicast_reaches_every_member_on_this_host() {
    use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd;
    let t = tempfile::tempdir().unwrap();
    let seg = segment("probe", nix::unistd::getuid().as_raw(), t.path());
    let member = || -> std::net::UdpSocket {
        let fd = socket::socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true).unwrap();
        socket::bind(
            fd.as_raw_fd(),
            &SockaddrIn::from(std::net::SocketAddrV4::new(seg.group, seg.port)),
        )
        .unwrap();
        let udp = std::net::UdpSocket::from(fd);
        udp.join_multicast_v4(&seg.group, &Ipv4Addr::LOCALHOST)
            .unwrap();
        udp.set_multicast_loop_v4(true).unwrap();
        let lo = libc::in_addr {
            s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
        };
        // SAFETY: setsockopt on a socket this closure owns, with a
        // pointer to an in_addr that lives across the call and its size.
        let r = unsafe {
            libc::setsockopt(
                udp.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_IF,
                (&lo as *const libc::in_addr).cast(),
                std::mem::size_of::<libc::in_addr>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "IP_MULTICAST_IF: {}", std::io::Error::last_os_error());
        udp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        udp
    };
    let (a, b) = (member(), member());
    a.send_to(b"frame from a", (seg.group, seg.port)).unwrap();
    for (who, s) in [("the other member", &b), ("the sender itself", &a)] {
        let mut buf = [0u8; 64];
        let (n, from) = s
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{who} heard nothing: {e}"));
        assert_eq!(&buf[..n], b"frame from a", "{who}");
        assert_eq!(
            from.ip(),
            std::net::IpAddr::V4(Ipv4Addr::LOCALHOST),
            "{who}"
        );
    }
}
