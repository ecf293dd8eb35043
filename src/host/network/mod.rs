//! Private networks between machines (`b2d up NAME --network NET`): an
//! L2 segment shared by the QEMU processes of this host, and nothing
//! else. Each machine on NET gets a second NIC, a QEMU `socket` netdev
//! on a multicast group sent and received on 127.0.0.1 only (QEMU sets
//! `IP_MULTICAST_IF` and joins the group on `localaddr`; the kernel
//! delivers to every member on this host and nothing leaves it). No
//! extra process, nothing bridged, nothing that needs root.
//!
//! The group and UDP port come from a hash of the network's name, the
//! user's uid and the machine store's path, so two users, or two stores
//! (parallel tests), never share a segment by accident; other local
//! users could still join a group on purpose (README). Each network has
//! a /24 in 192.168.0.0/16 derived from its name; each machine the
//! lowest host number no other machine of the store holds on it, kept in
//! its `config.json`, and a MAC of its own (`02:b2:…`, locally
//! administered, ending in its address's last two bytes).

use crate::host::store::{Machine, MachineError, Store};
use crate::wire::network::{valid_name, Peer, PrivateNic};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::net::Ipv4Addr;
use std::path::Path;

/// Every network is a /24.
pub const PREFIX: u8 = 24;

/// The private NIC's netdev id on the QEMU command line (the user
/// network's is `n0`).
pub const NETDEV: &str = "n1";

/// Third bytes of 192.168.X.0/24 never taken: the defaults of home
/// routers, libvirt (122) and Docker Desktop (65), where a machine's
/// own LAN or another VM tool is likeliest. Its guest reaches such a LAN
/// through the user network, which a second NIC on the same /24 would
/// shadow.
const AVOID: &[u8] = &[65, 88, 100, 122, 168, 178, 188];
/// 192.168.X.0/24 with X in this range, less [`AVOID`].
const SUBNETS: std::ops::RangeInclusive<u8> = 32..=250;

pub use crate::host::store::config::Attachment;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("--network {}: not a network name: use 1-63 letters, digits and '-' (e.g. --network lab), or --network none", .0.escape_debug())]
    BadName(String),
    #[error("network {network}: every address of {subnet}/24 is taken by a machine of this store: remove one (`b2d rm NAME`) or use another network")]
    Full { network: String, subnet: Ipv4Addr },
    #[error(transparent)]
    Machine(#[from] MachineError),
}

/// `--network NET`: Ok(None) for `none` (leave any network).
pub fn parse_arg(arg: &str) -> Result<Option<String>, NetworkError> {
    match arg {
        "none" => Ok(None),
        n if valid_name(n) => Ok(Some(n.to_string())),
        n => Err(NetworkError::BadName(n.to_string())),
    }
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// The network's subnet, 192.168.X.0 (a /24).
pub fn subnet(network: &str) -> Ipv4Addr {
    let choices: Vec<u8> = SUBNETS.filter(|x| !AVOID.contains(x)).collect();
    let h = digest(&[b"b2d subnet", network.as_bytes()]);
    let i = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize % choices.len();
    Ipv4Addr::new(192, 168, choices[i], 0)
}

/// Where a network's frames travel on this host: a multicast group in
/// 239.0.0.0/8 (administratively scoped) and a UDP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub group: Ipv4Addr,
    pub port: u16,
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.group, self.port)
    }
}

/// The segment of `network` for user `uid` and the store at `root`.
/// The group avoids 239.255.0.0/16 (site-local, SSDP) and 239.0.0.0/10;
/// the port stays below Linux's ephemeral range (32768-60999), where
/// another program's bound socket would keep QEMU from binding.
pub fn segment(network: &str, uid: u32, root: &Path) -> Segment {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let h = digest(&[
        b"b2d segment",
        network.as_bytes(),
        uid.to_string().as_bytes(),
        root.as_os_str().as_encoded_bytes(),
    ]);
    Segment {
        group: Ipv4Addr::new(239, 64 + h[0] % 128, h[1], 1 + h[2] % 254),
        port: 20000 + u16::from_le_bytes([h[3], h[4]]) % 12000,
    }
}

/// The segment of the store `store` for this user.
pub fn segment_here(network: &str, store: &Store) -> Segment {
    segment(network, nix::unistd::getuid().as_raw(), &store.root)
}

/// The private NIC's MAC: locally administered unicast, two bytes from
/// the machine's and network's names, the address's last two bytes (so
/// no two machines on a network share one).
pub fn mac(machine: &str, network: &str, address: Ipv4Addr) -> String {
    let h = digest(&[b"b2d mac", network.as_bytes(), machine.as_bytes()]);
    let a = address.octets();
    format!("02:b2:{:02x}:{:02x}:{:02x}:{:02x}", h[0], h[1], a[2], a[3])
}

/// The machines of `store` on `network`, by name.
pub fn members(store: &Store, network: &str) -> Result<Vec<Machine>, MachineError> {
    Ok(store
        .list()?
        .into_iter()
        // A machine whose config cannot be read is in none.
        .flatten()
        .filter(|m| m.config.network.as_ref().is_some_and(|a| a.name == network))
        .collect())
}

/// An address for machine `name` on `network`: the one it has there, or
/// the lowest host number no other machine of the store holds. The
/// caller holds the store's creation lock.
pub fn allocate(store: &Store, name: &str, network: &str) -> Result<Ipv4Addr, NetworkError> {
    let net = subnet(network);
    let others = members(store, network)?;
    if let Some(a) = others
        .iter()
        .find(|m| m.name == name)
        .and_then(|m| m.config.network.as_ref())
        .filter(|a| a.address.octets()[..3] == net.octets()[..3])
    {
        return Ok(a.address);
    }
    let taken: Vec<Ipv4Addr> = others
        .iter()
        .filter(|m| m.name != name)
        .filter_map(|m| m.config.network.as_ref().map(|a| a.address))
        .collect();
    let [a, b, c, _] = net.octets();
    (1..=254u8)
        .map(|h| Ipv4Addr::new(a, b, c, h))
        .find(|ip| !taken.contains(ip))
        .ok_or(NetworkError::Full {
            network: network.into(),
            subnet: net,
        })
}

/// The other machines on `m`'s network, for its /etc/hosts.
pub fn peers(store: &Store, m: &Machine) -> Vec<Peer> {
    let Some(own) = &m.config.network else {
        return Vec::new();
    };
    let mut v: Vec<Peer> = members(store, &own.name)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.name != m.name)
        .filter_map(|p| {
            p.config.network.map(|a| Peer {
                name: p.name,
                address: a.address,
            })
        })
        .collect();
    v.sort();
    v
}

/// What the guest is told about its private NIC this boot.
pub fn nic(store: &Store, m: &Machine) -> Option<PrivateNic> {
    let a = m.config.network.as_ref()?;
    Some(PrivateNic {
        network: a.name.clone(),
        mac: mac(&m.name, &a.name, a.address),
        address: a.address,
        prefix: PREFIX,
        peers: peers(store, m),
    })
}

/// QEMU's arguments for `m`'s private NIC (none without a network):
/// after the user network's NIC, so that one stays eth0.
pub fn qemu_args(store: &Store, m: &Machine) -> Vec<String> {
    let Some(a) = &m.config.network else {
        return Vec::new();
    };
    let seg = segment_here(&a.name, store);
    vec![
        "-netdev".into(),
        format!("socket,id={NETDEV},mcast={seg},localaddr=127.0.0.1"),
        "-device".into(),
        format!(
            "virtio-net-pci,netdev={NETDEV},mac={}",
            mac(&m.name, &a.name, a.address)
        ),
    ]
}

#[cfg(test)]
mod tests;
