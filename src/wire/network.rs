//! The private network between machines (`b2d up NAME --network NET`):
//! what the host tells the guest about its second NIC in the per-boot
//! config ([`super::guest_config`]) and, for a running machine, over the
//! control port when a peer joins or leaves ([`super::control`]).
//!
//! The NIC is found by its MAC and configured statically (no DHCP on
//! it: nothing on that segment answers DHCP); each peer becomes a line
//! of `/etc/hosts`, so machines reach each other by name.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// The guest's NIC on a private network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateNic {
    /// The network's name (for the console and /etc/hosts).
    pub network: String,
    /// `02:b2:…`, locally administered: how the guest tells this NIC
    /// from the user-network one.
    pub mac: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// The other machines on the network.
    #[serde(default)]
    pub peers: Vec<Peer>,
}

/// Another machine on the network: its name (also its hostname) and its
/// address there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Peer {
    pub name: String,
    pub address: Ipv4Addr,
}

/// Whether `s` can be a network's or a machine's name: 1-63 letters,
/// digits and '-', not starting or ending with '-' (a host name label,
/// which also keeps it one word in /etc/hosts).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The six bytes of a MAC written `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Why the guest refuses a network's name or its list of peers, if it
/// does (each name becomes one word of /etc/hosts).
pub fn peers_problem(network: &str, peers: &[Peer]) -> Option<String> {
    if !valid_name(network) {
        return Some(format!(
            "network name \"{}\" is not a host name label",
            network.escape_debug()
        ));
    }
    peers.iter().find_map(|p| {
        (!valid_name(&p.name)).then(|| {
            format!(
                "network {network}: peer name \"{}\" is not a host name label",
                p.name.escape_debug()
            )
        })
    })
}

/// Why the guest refuses a private NIC from the host, if it does.
pub fn nic_problem(n: &PrivateNic) -> Option<String> {
    if let Some(why) = peers_problem(&n.network, &n.peers) {
        return Some(why);
    }
    let net = &n.network;
    match parse_mac(&n.mac) {
        None => {
            return Some(format!(
                "network {net}: bad MAC \"{}\"",
                n.mac.escape_debug()
            ))
        }
        Some(m) if m[0] & 1 == 1 => {
            return Some(format!(
                "network {net}: MAC {} is a multicast address",
                n.mac
            ))
        }
        Some(_) => {}
    }
    if !(8..=30).contains(&n.prefix) {
        return Some(format!("network {net}: prefix /{} (use 8 to 30)", n.prefix));
    }
    let a = n.address;
    if a.is_loopback() || a.is_multicast() || a.is_unspecified() || a.is_broadcast() {
        return Some(format!("network {net}: {a} is not a host address"));
    }
    None
}

/// Machine lab's NIC at 192.168.140.1 on network lab, with lab-2 as its
/// peer, for tests.
#[cfg(test)]
pub(crate) fn sample() -> PrivateNic {
    PrivateNic {
        network: "lab".into(),
        mac: "02:b2:1f:3c:8c:01".into(),
        address: Ipv4Addr::new(192, 168, 140, 1),
        prefix: 24,
        peers: vec![Peer {
            name: "lab-2".into(),
            address: Ipv4Addr::new(192, 168, 140, 2),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic() -> PrivateNic {
        sample()
    }

    #[test]
    fn a_nic_round_trips_with_addresses_as_text() {
        let text = serde_json::to_string(&nic()).unwrap();
        assert_eq!(
            text,
            r#"{"network":"lab","mac":"02:b2:1f:3c:8c:01","address":"192.168.140.1","prefix":24,"peers":[{"name":"lab-2","address":"192.168.140.2"}]}"#
        );
        assert_eq!(serde_json::from_str::<PrivateNic>(&text).unwrap(), nic());
        assert!(serde_json::from_str::<PrivateNic>(
            r#"{"network":"lab","mac":"02:b2:00:00:00:01","address":"192.168.140.300","prefix":24}"#
        )
        .is_err());
        assert_eq!(nic_problem(&nic()), None);
    }

    #[test]
    fn what_the_guest_refuses_is_named() {
        type Spoil = fn(&mut PrivateNic);
        let cases: [(Spoil, &str); 6] = [
            (|n| n.network = "a b".into(), "network name \"a b\""),
            (|n| n.mac = "02:b2:1f:3c:8c".into(), "bad MAC"),
            (|n| n.mac = "03:b2:1f:3c:8c:01".into(), "multicast"),
            (|n| n.prefix = 31, "prefix /31"),
            (
                |n| n.address = Ipv4Addr::new(127, 0, 0, 2),
                "not a host address",
            ),
            (
                |n| n.peers[0].name = "x\n10.0.0.1 evil".into(),
                "peer name \"x\\n10.0.0.1 evil\"",
            ),
        ];
        for (spoil, want) in cases {
            let mut n = nic();
            spoil(&mut n);
            let why = nic_problem(&n).unwrap_or_default();
            assert!(why.contains(want), "{want}: {why}");
            crate::assert_readable(&why);
        }
    }

    #[test]
    fn macs_and_names() {
        assert_eq!(
            parse_mac("02:B2:00:ff:10:01"),
            Some([2, 0xb2, 0, 0xff, 0x10, 1])
        );
        for bad in [
            "",
            "02:b2",
            "02:b2:00:ff:10:01:02",
            "0:b2:00:ff:10:01",
            "zz:b2:00:ff:10:01",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
        assert!(valid_name("lab-2"));
        for bad in ["", "-a", "a-", "a.b", "a b", &"x".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
