//! The NIC on a private network between machines (`b2d up NAME
//! --network NET`, see [`crate::wire::network`]): found by the MAC the
//! host gave it, configured with the host's address and no DHCP (nothing
//! on that segment would answer), and the peers written to /etc/hosts so
//! machines reach each other by name. The user-network NIC keeps its
//! DHCP lease and the default route: the host's forwards go through it.

use crate::errors::{PathError, WithPath};
use crate::sys::{run_tool, Sys, ToolError};
use crate::wire::network::{nic_problem, peers_problem, Peer, PrivateNic};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LanError {
    #[error("network: the host's private NIC is refused: {0}")]
    Refused(String),
    #[error("network {network}: no link has the MAC {mac} the host gave the private NIC")]
    NoLink { network: String, mac: String },
    #[error("network {network}: {source}")]
    Tool {
        network: String,
        #[source]
        source: ToolError,
    },
    #[error("network: {0}")]
    Hosts(#[from] PathError),
}

/// The link under `sys_class_net` whose MAC is `mac` (any case).
pub fn link_with_mac(sys_class_net: &Path, mac: &str) -> Option<String> {
    let rd = std::fs::read_dir(sys_class_net).ok()?;
    let mut found: Vec<String> = rd
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("address"))
                .is_ok_and(|a| a.trim().eq_ignore_ascii_case(mac))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    found.into_iter().next()
}

/// The ethernet links that get DHCP, and the private NIC's link (found
/// by its MAC), which does not.
pub fn split_links(
    sys_class_net: &Path,
    private: Option<&PrivateNic>,
) -> (Vec<String>, Option<String>) {
    let own = private.and_then(|n| link_with_mac(sys_class_net, &n.mac));
    let dhcp = super::links::ethernet_links(sys_class_net)
        .into_iter()
        .filter(|l| Some(l) != own.as_ref())
        .collect();
    (dhcp, own)
}

/// Give the private NIC its address and bring it up; returns its link.
pub fn configure(
    sys: &dyn Sys,
    sys_class_net: &Path,
    nic: &PrivateNic,
) -> Result<String, LanError> {
    if let Some(why) = nic_problem(nic) {
        return Err(LanError::Refused(why));
    }
    let link = link_with_mac(sys_class_net, &nic.mac).ok_or_else(|| LanError::NoLink {
        network: nic.network.clone(),
        mac: nic.mac.clone(),
    })?;
    let cidr = format!("{}/{}", nic.address, nic.prefix);
    for args in [
        vec!["ip", "addr", "replace", cidr.as_str(), "dev", link.as_str()],
        vec!["ip", "link", "set", "dev", link.as_str(), "up"],
    ] {
        run_tool(sys, "busybox", &args).map_err(|source| LanError::Tool {
            network: nic.network.clone(),
            source,
        })?;
    }
    Ok(link)
}

/// The /etc/hosts lines naming the peers on `network`.
pub fn hosts_block(network: &str, peers: &[Peer]) -> String {
    if peers.is_empty() {
        return String::new();
    }
    let mut out = format!("# machines on the b2d network {network}\n");
    for p in peers {
        out += &format!("{}\t{}\n", p.address, p.name);
    }
    out
}

/// [`hosts_block`] of a NIC the guest accepts; nothing otherwise.
pub fn hosts_of(nic: Option<&PrivateNic>) -> String {
    match nic.filter(|n| nic_problem(n).is_none()) {
        Some(n) => hosts_block(&n.network, &n.peers),
        None => String::new(),
    }
}

/// Replace /etc/hosts under `etc` with the hostname's lines and the
/// peers of `network` (a peer joined or left while the machine runs).
pub fn rewrite_hosts(etc: &Path, network: &str, peers: &[Peer]) -> Result<usize, LanError> {
    if let Some(why) = peers_problem(network, peers) {
        return Err(LanError::Refused(why));
    }
    let hostname_file = etc.join("hostname");
    let name = std::fs::read_to_string(&hostname_file).with_path("cannot read", &hostname_file)?;
    let text = super::users::hosts_file(name.trim()) + &hosts_block(network, peers);
    crate::atomic::replace(&etc.join("hosts"), text.as_bytes(), 0o644)?;
    Ok(peers.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{CmdOutput, FakeSys};
    use std::net::Ipv4Addr;

    /// lab with two peers, lab-2 and lab-3.
    fn nic() -> PrivateNic {
        let mut n = crate::wire::network::sample();
        n.peers.push(Peer {
            name: "lab-3".into(),
            address: Ipv4Addr::new(192, 168, 140, 3),
        });
        n
    }

    /// eth0 (user network) and eth1 (the private NIC) under `dir`.
    fn links(dir: &Path) {
        for (name, mac) in [("eth0", "52:54:00:12:34:56"), ("eth1", "02:B2:1F:3C:8C:01")] {
            let p = dir.join(name);
            std::fs::create_dir_all(p.join("device")).unwrap();
            std::fs::write(p.join("type"), "1\n").unwrap();
            std::fs::write(p.join("address"), format!("{}\n", mac.to_lowercase())).unwrap();
        }
    }

    #[test]
    fn the_private_link_is_found_by_mac_and_left_out_of_dhcp() {
        let d = tempfile::tempdir().unwrap();
        links(d.path());
        assert_eq!(
            link_with_mac(d.path(), "02:B2:1F:3C:8C:01").as_deref(),
            Some("eth1")
        );
        let n = nic();
        assert_eq!(
            split_links(d.path(), Some(&n)),
            (vec!["eth0".to_string()], Some("eth1".to_string()))
        );
        assert_eq!(
            split_links(d.path(), None),
            (vec!["eth0".to_string(), "eth1".to_string()], None)
        );
    }

    #[test]
    fn configure_sets_the_address_then_the_link_up() {
        let d = tempfile::tempdir().unwrap();
        links(d.path());
        let sys = FakeSys::new();
        assert_eq!(configure(&sys, d.path(), &nic()).unwrap(), "eth1");
        assert_eq!(
            sys.calls(),
            vec![
                "run busybox ip addr replace 192.168.140.1/24 dev eth1",
                "run busybox ip link set dev eth1 up",
            ]
        );
        let mut other = nic();
        other.mac = "02:b2:00:00:00:09".into();
        let e = configure(&sys, d.path(), &other).unwrap_err().to_string();
        assert_eq!(
            e,
            "network lab: no link has the MAC 02:b2:00:00:00:09 the host gave the private NIC"
        );
        sys.set_output(
            "run busybox ip addr",
            CmdOutput {
                code: Some(2),
                stderr: b"ip: RTNETLINK answers: File exists".to_vec(),
                ..Default::default()
            },
        );
        let e = configure(&sys, d.path(), &nic()).unwrap_err().to_string();
        assert!(e.starts_with("network lab: busybox ip addr replace"), "{e}");
        assert!(e.ends_with("File exists"), "{e}");
    }

    #[test]
    fn peers_become_host_lines_and_a_bad_peer_writes_nothing() {
        assert_eq!(
            hosts_of(Some(&nic())),
            "# machines on the b2d network lab\n192.168.140.2\tlab-2\n192.168.140.3\tlab-3\n"
        );
        assert_eq!(hosts_block("lab", &[]), "");
        let mut bad = nic();
        bad.peers[1].name = "lab-3\n1.2.3.4 registry".into();
        assert_eq!(hosts_of(Some(&bad)), "");
        assert_eq!(hosts_of(None), "");
    }

    #[test]
    fn hosts_are_rewritten_for_the_current_hostname() {
        let d = tempfile::tempdir().unwrap();
        let etc = d.path();
        std::fs::write(etc.join("hostname"), "lab\n").unwrap();
        assert_eq!(rewrite_hosts(etc, "lab", &nic().peers).unwrap(), 2);
        let hosts = std::fs::read_to_string(etc.join("hosts")).unwrap();
        assert!(
            hosts.starts_with("127.0.0.1\tlocalhost\n127.0.1.1\tlab\n"),
            "{hosts}"
        );
        assert!(hosts.ends_with("192.168.140.3\tlab-3\n"), "{hosts}");
        rewrite_hosts(etc, "lab", &nic().peers[..1]).unwrap();
        let hosts = std::fs::read_to_string(etc.join("hosts")).unwrap();
        assert!(!hosts.contains("lab-3"), "a removed peer is gone: {hosts}");
        let mut bad = nic().peers;
        bad[0].name = "a b".into();
        let e = rewrite_hosts(etc, "lab", &bad).unwrap_err().to_string();
        assert!(e.contains("peer name \"a b\""), "{e}");
        assert!(std::fs::read_to_string(etc.join("hosts"))
            .unwrap()
            .contains("lab-2"));
    }
}
