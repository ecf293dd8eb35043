//! Host → guest requests around a suspend (and a private network's
//! peers), over the virtio-serial port
//! [`CHANNEL`]: `b2d suspend` (and `b2d up` of a suspended machine)
//! writes one JSON request per line and reads the guest's one-line reply
//! carrying the same `id`. Only the host asks; the guest only answers,
//! and nothing it says reaches QMP.
//!
//! - `suspend`: write the page cache back to the disk, drop the clean
//!   part (a smaller state file), and unmount the shares (QEMU 7.2 cannot
//!   migrate a mounted 9p export or any virtiofs device).
//! - `resumed`: step the clock to the host's, renew the DHCP lease and
//!   mount again the shares `suspend` unmounted. Also sent when a suspend
//!   is abandoned after `suspend` answered.
//! - `peers`: the machines on the guest's private network now (one was
//!   created, booted or removed): its `/etc/hosts` names them.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The virtio-serial port name (`/dev/virtio-ports/<CHANNEL>` in the guest).
pub const CHANNEL: &str = "org.b2d.control.0";

/// Longest line either side reads.
pub const MAX_LINE: usize = 64 << 10;

/// How long the guest keeps trying, on `resumed`, a share whose virtio
/// device has not come back yet, before it answers. The host waits
/// longer than this for that answer.
pub const REMOUNT_FOR: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    Suspend,
    Resumed {
        /// The host's wall clock, ms since the Unix epoch.
        unix_ms: u64,
    },
    Peers {
        network: String,
        peers: Vec<super::network::Peer>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Reply {
    pub id: u64,
    /// What went wrong; None when the request was carried out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the guest did, for the host's log and the user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<String>,
}

fn line<T: Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string(v).unwrap_or_default();
    s.push('\n');
    s
}

fn parse<T: for<'de> Deserialize<'de>>(l: &str) -> Option<T> {
    if l.len() > MAX_LINE {
        return None;
    }
    serde_json::from_str(l.trim()).ok()
}

impl Request {
    pub fn line(&self) -> String {
        line(self)
    }
    /// None for noise or a torn line (the port keeps bytes across
    /// reconnects).
    pub fn parse(l: &str) -> Option<Request> {
        parse(l)
    }
}

impl Reply {
    pub fn line(&self) -> String {
        line(self)
    }
    pub fn parse(l: &str) -> Option<Reply> {
        parse(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip_as_single_lines() {
        let r = Request {
            id: 7,
            op: Op::Resumed {
                unix_ms: 1_700_000_000_000,
            },
        };
        assert_eq!(
            r.line(),
            "{\"id\":7,\"op\":\"resumed\",\"unix_ms\":1700000000000}\n"
        );
        assert_eq!(Request::parse(&r.line()), Some(r));
        let s = Request {
            id: 8,
            op: Op::Suspend,
        };
        assert_eq!(s.line(), "{\"id\":8,\"op\":\"suspend\"}\n");
        assert_eq!(Request::parse(&s.line()), Some(s));
        let p = Request {
            id: 9,
            op: Op::Peers {
                network: "lab".into(),
                peers: vec![super::super::network::Peer {
                    name: "lab-2".into(),
                    address: std::net::Ipv4Addr::new(192, 168, 140, 2),
                }],
            },
        };
        assert_eq!(
            p.line(),
            "{\"id\":9,\"op\":\"peers\",\"network\":\"lab\",\"peers\":[{\"name\":\"lab-2\",\"address\":\"192.168.140.2\"}]}\n"
        );
        assert_eq!(Request::parse(&p.line()), Some(p));
        let ok = Reply {
            id: 8,
            ..Default::default()
        };
        assert_eq!(ok.line(), "{\"id\":8}\n");
        let bad = Reply {
            id: 9,
            error: Some("share /home/a: busy".into()),
            done: vec!["synced".into()],
        };
        assert_eq!(Reply::parse(&bad.line()), Some(bad));
    }

    #[test]
    fn noise_is_no_request() {
        for l in [
            "",
            "}{",
            "{\"id\":1,\"op\":\"reboot\"}",
            "{\"op\":\"suspend\"}",
            "{\"id\":-1,\"op\":\"suspend\"}",
        ] {
            assert_eq!(Request::parse(l), None, "{l}");
        }
        let long = format!(
            "{{\"id\":1,\"op\":\"suspend\",\"x\":\"{}\"}}",
            "a".repeat(MAX_LINE)
        );
        assert_eq!(Request::parse(&long), None);
    }
}
