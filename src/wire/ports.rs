//! The guest → host port messages, over the virtio-serial port
//! [`CHANNEL`]: one JSON object per line, the whole set of ports that
//! listen in the guest on a non-loopback address each time it changes
//! (and again every few seconds, so a host agent that restarts catches up):
//!
//! `{"ports":[{"proto":"tcp","port":18080,"by":"docker-proxy"}]}`
//!
//! The host agent forwards each to the same port on the host's 127.0.0.1.
//! The channel carries data only, never commands for the host: the guest
//! never reaches QMP.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The virtio-serial port name (`/dev/virtio-ports/<CHANNEL>` in the guest).
pub const CHANNEL: &str = "org.b2d.agent.0";

/// Ports that already have fixed forwards (ssh, the Docker API) and are
/// never announced.
pub const RESERVED: &[u16] = &[22, 2376];

/// Swarm mode's cluster management port: its managers listen on it.
pub const SWARM_MANAGEMENT: u16 = 2377;

/// Swarm mode's node-to-node ports (cluster management, gossip, the
/// overlay's VXLAN): they serve the other nodes on the private network,
/// never the host, so they are never announced either.
pub const NODE_TO_NODE: &[(Proto, u16)] = &[
    (Proto::Tcp, SWARM_MANAGEMENT),
    (Proto::Tcp, 7946),
    (Proto::Udp, 7946),
    (Proto::Udp, 4789),
];

/// Whether (`proto`, `port`) is ever announced to the host.
pub fn announced(proto: Proto, port: u16) -> bool {
    port != 0 && !RESERVED.contains(&port) && !NODE_TO_NODE.contains(&(proto, port))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One listening port in the guest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Listener {
    pub proto: Proto,
    pub port: u16,
    /// The listening program's name (`comm`), when the agent found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// One message: the complete current set, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PortsMsg {
    pub ports: Vec<Listener>,
}

/// Longest line the host reads; a longer one is dropped, not buffered.
/// One listener takes at most about 130 bytes (a [`COMM_MAX`]-byte name
/// whose every byte JSON-escapes as `\u00XX`), so this still holds 2000
/// of the worst and 5000 of docker-proxy's, more than any real guest
/// listens on (each published port of a range is one). Every port of both
/// protocols (131070 listeners, up to 17 MiB) is not worth buffering.
pub const MAX_LINE: usize = 256 << 10;

/// The most of a listener's name the host keeps: the kernel's `comm`
/// (`TASK_COMM_LEN`, 16 bytes with its NUL).
pub const COMM_MAX: usize = 15;

/// A listener's name as the host keeps and shows it: at most
/// [`COMM_MAX`] bytes of what the guest sent (cut at a character
/// boundary), made printable. Any program in the guest names itself.
pub fn comm_text(by: &str) -> String {
    crate::util::printable(cut(by, COMM_MAX)).into_owned()
}

/// A name [`comm_text`] made, as shown: the same text. A longer or raw
/// one (from a `ports.json` an older agent wrote) is cut to the longest
/// a `comm` escapes to and made printable.
pub fn comm_shown(by: &str) -> String {
    let max = COMM_MAX * "\\u{10ffff}".len();
    cut(&crate::util::printable(cut(by, max)), max).to_string()
}

/// The first `max` bytes of `s` at most, cut at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl PortsMsg {
    pub fn line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| "{\"ports\":[]}".into());
        s.push('\n');
        s
    }

    /// A message from one line; None for anything else (noise on the
    /// channel, a torn line after a reconnect). Reserved and zero ports
    /// are dropped here too, whatever the guest sent, and each name is
    /// cut to a `comm` and made printable ([`comm_text`]).
    pub fn parse(line: &str) -> Option<PortsMsg> {
        if line.len() > MAX_LINE {
            return None;
        }
        let mut m: PortsMsg = serde_json::from_str(line.trim()).ok()?;
        m.ports.retain(|l| announced(l.proto, l.port));
        for l in &mut m.ports {
            l.by = l.by.as_deref().map(comm_text);
        }
        m.ports.sort();
        m.ports
            .dedup_by(|a, b| a.proto == b.proto && a.port == b.port);
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_round_trips_and_hostile_lines_are_dropped() {
        let m = PortsMsg {
            ports: vec![
                Listener {
                    proto: Proto::Tcp,
                    port: 18080,
                    by: Some("docker-proxy".into()),
                },
                Listener {
                    proto: Proto::Udp,
                    port: 5353,
                    by: None,
                },
            ],
        };
        let line = m.line();
        assert_eq!(
            line,
            "{\"ports\":[{\"proto\":\"tcp\",\"port\":18080,\"by\":\"docker-proxy\"},{\"proto\":\"udp\",\"port\":5353}]}\n"
        );
        let back = PortsMsg::parse(&line).unwrap();
        assert_eq!(back.ports.len(), 2);
        assert_eq!(back.ports[0].proto, Proto::Tcp);
        for bad in [
            "",
            "garbage",
            "{\"ports\":[{\"proto\":\"sctp\",\"port\":1}]}",
            "{\"ports\":[{\"proto\":\"tcp\",\"port\":70000}]}",
        ] {
            assert_eq!(PortsMsg::parse(bad), None, "{bad}");
        }
        let reserved = PortsMsg::parse(
            "{\"ports\":[{\"proto\":\"tcp\",\"port\":22},{\"proto\":\"tcp\",\"port\":2376},{\"proto\":\"tcp\",\"port\":0},{\"proto\":\"tcp\",\"port\":80},{\"proto\":\"tcp\",\"port\":80}]}",
        )
        .unwrap();
        assert_eq!(
            reserved.ports,
            vec![Listener {
                proto: Proto::Tcp,
                port: 80,
                by: None
            }]
        );
        assert_eq!(PortsMsg::parse(&"x".repeat(MAX_LINE + 1)), None);
    }

    #[test]
    fn swarm_node_to_node_ports_are_dropped_by_protocol() {
        let m = PortsMsg::parse(
            "{\"ports\":[{\"proto\":\"tcp\",\"port\":2377},{\"proto\":\"udp\",\"port\":7946},{\"proto\":\"udp\",\"port\":4789},{\"proto\":\"tcp\",\"port\":4789},{\"proto\":\"udp\",\"port\":2377}]}",
        )
        .unwrap();
        let kept: Vec<(Proto, u16)> = m.ports.iter().map(|l| (l.proto, l.port)).collect();
        assert_eq!(kept, vec![(Proto::Tcp, 4789), (Proto::Udp, 2377)]);
    }

    #[test]
    fn a_listener_s_name_is_a_printable_comm_whatever_the_guest_sent() {
        assert_eq!(comm_text("docker-proxy"), "docker-proxy");
        assert_eq!(comm_text("a-very-long-program-name"), "a-very-long-pro");
        assert_eq!(
            comm_text("\u{1b}[31mevil\u{1b}[0m!!!"),
            "\\x1b[31mevil\\x1b[0m!!"
        );
        assert_eq!(comm_text("ééééééééé"), "ééééééé", "cut at a character");
        assert_eq!(comm_text("\u{9b}2J"), "\\u{9b}2J");
        for raw in [
            "\u{1b}[31mevil\u{1b}[0m",
            "\u{9b}\u{9b}\u{9b}\u{9b}\u{9b}\u{9b}\u{9b}",
        ] {
            assert_eq!(comm_shown(&comm_text(raw)), comm_text(raw), "shown as kept");
        }
        assert_eq!(comm_shown(&"\u{1b}".repeat(1000)).len(), 150);
        let big = "x".repeat(200 << 10);
        let line = format!(
            "{{\"ports\":[{{\"proto\":\"tcp\",\"port\":80,\"by\":\"{big}\"}},{{\"proto\":\"tcp\",\"port\":81,\"by\":\"\\u001b]0;x\\u0007\"}}]}}"
        );
        let m = PortsMsg::parse(&line).unwrap();
        let by: Vec<_> = m.ports.iter().map(|l| l.by.as_deref().unwrap()).collect();
        assert_eq!(by, ["xxxxxxxxxxxxxxx", "\\x1b]0;x\\x07"]);
    }
}
