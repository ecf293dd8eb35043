//! Swarm's published ports (`docker service create -p P:80`): the
//! routing mesh answers them on every node through iptables DNAT to the
//! ingress sandbox, not through a socket of a process of this node.
//! dockerd 26 does hold a placeholder listener on each such port, which
//! the port watch sees in /proc, but that is an implementation detail
//! (its failure is only a warning in dockerd's log). So a manager (a
//! node listening on swarm's management port) also asks dockerd for the
//! services and their ingress ports every [`EVERY`], or [`AFTER_REFUSAL`]
//! after dockerd did not answer. Other nodes are never asked: dockerd
//! answers them 503 and logs each such answer as an error. The ports
//! found are merged into what the port watch reports, named after their
//! service.

use crate::wire::ports::{announced, Listener, Proto};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often a manager is asked.
pub const EVERY: Duration = Duration::from_secs(2);
/// How long after a refusal or no answer.
pub const AFTER_REFUSAL: Duration = Duration::from_secs(10);
/// Largest `/services` answer read.
const LIMIT: u64 = 4 << 20;
const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Service {
    #[serde(default)]
    spec: Spec,
    #[serde(default)]
    endpoint: Endpoint,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Spec {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Endpoint {
    #[serde(default)]
    ports: Vec<Port>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Port {
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    published_port: u16,
    #[serde(default)]
    publish_mode: String,
}

/// The ingress ports in a `GET /services` body, each named
/// `service NAME`; empty for anything that does not parse.
pub fn ports_of(body: &[u8]) -> Vec<Listener> {
    let services: Vec<Service> = serde_json::from_slice(body).unwrap_or_default();
    let mut out: Vec<Listener> = services
        .iter()
        .flat_map(|s| {
            s.endpoint.ports.iter().filter_map(|p| {
                let proto = match p.protocol.as_str() {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    _ => return None,
                };
                (p.publish_mode == "ingress" && announced(proto, p.published_port)).then(|| {
                    Listener {
                        proto,
                        port: p.published_port,
                        by: Some(format!("service {}", s.spec.name)),
                    }
                })
            })
        })
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.proto == b.proto && a.port == b.port);
    out
}

/// `ingress` added to the port watch's `listening` (sorted, one entry a
/// port): an ingress port dockerd's placeholder also holds is named
/// after its service.
pub fn merge(listening: &mut Vec<Listener>, ingress: &[Listener]) {
    for i in ingress {
        match listening
            .iter_mut()
            .find(|l| l.proto == i.proto && l.port == i.port)
        {
            Some(l) => l.by = i.by.clone(),
            None => listening.push(i.clone()),
        }
    }
    listening.sort();
}

/// The poll's state: when to ask next, and what the last answer held.
#[derive(Debug)]
pub struct Poll {
    sock: PathBuf,
    next: Instant,
    last: Vec<Listener>,
}

impl Poll {
    /// Asking dockerd on `sock`, the first time at once.
    pub fn new(sock: PathBuf) -> Poll {
        Poll {
            sock,
            next: Instant::now(),
            last: Vec::new(),
        }
    }

    /// The ingress ports as of the last answer, asking again when due;
    /// none on a node that is no `manager`.
    pub fn ports(&mut self, manager: bool, now: Instant) -> &[Listener] {
        if !manager {
            self.last.clear();
        } else if now >= self.next {
            let answer = super::docker_api::get(&self.sock, "/services", TIMEOUT, LIMIT);
            self.next = now + self.answered(answer.as_ref().map(|(c, b)| (*c, &b[..])));
        }
        &self.last
    }

    /// Take an answer (None: dockerd did not answer); how long until the
    /// next question.
    fn answered(&mut self, answer: Option<(u16, &[u8])>) -> Duration {
        match answer {
            Some((200, body)) => {
                self.last = ports_of(body);
                EVERY
            }
            _ => {
                self.last.clear();
                AFTER_REFUSAL
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICES: &str = r#"[
      {"ID":"a","Spec":{"Name":"web"},"Endpoint":{"Spec":{"Mode":"vip"},"Ports":[
        {"Protocol":"tcp","TargetPort":80,"PublishedPort":18080,"PublishMode":"ingress"},
        {"Protocol":"udp","TargetPort":53,"PublishedPort":5353,"PublishMode":"ingress"},
        {"Protocol":"tcp","TargetPort":81,"PublishedPort":18081,"PublishMode":"host"},
        {"Protocol":"sctp","TargetPort":9,"PublishedPort":9999,"PublishMode":"ingress"}]}},
      {"ID":"b","Spec":{"Name":"db"},"Endpoint":{}},
      {"ID":"c","Spec":{"Name":"mesh"},"Endpoint":{"Ports":[
        {"Protocol":"tcp","TargetPort":2377,"PublishedPort":2377,"PublishMode":"ingress"}]}}
    ]"#;

    fn l(proto: Proto, port: u16, by: Option<&str>) -> Listener {
        Listener {
            proto,
            port,
            by: by.map(str::to_string),
        }
    }

    #[test]
    fn only_ingress_ports_of_tcp_and_udp_named_by_service() {
        assert_eq!(
            ports_of(SERVICES.as_bytes()),
            vec![
                l(Proto::Tcp, 18080, Some("service web")),
                l(Proto::Udp, 5353, Some("service web")),
            ]
        );
        assert!(ports_of(b"{\"message\":\"This node is not a swarm manager.\"}").is_empty());
        assert!(ports_of(b"[]").is_empty());
    }

    #[test]
    fn merged_ports_keep_one_entry_each_named_by_the_service() {
        let mut listening = vec![
            l(Proto::Tcp, 8080, Some("docker-proxy")),
            l(Proto::Tcp, 18080, Some("dockerd")),
        ];
        merge(&mut listening, &ports_of(SERVICES.as_bytes()));
        assert_eq!(
            listening,
            vec![
                l(Proto::Tcp, 8080, Some("docker-proxy")),
                l(Proto::Tcp, 18080, Some("service web")),
                l(Proto::Udp, 5353, Some("service web")),
            ]
        );
    }

    #[test]
    fn a_manager_is_asked_often_anything_else_seldom() {
        let mut p = Poll::new("/nonexistent/docker.sock".into());
        assert_eq!(p.answered(Some((200, SERVICES.as_bytes()))), EVERY);
        assert_eq!(p.last.len(), 2);
        assert_eq!(
            p.answered(Some((
                503,
                b"{\"message\":\"This node is not a swarm manager.\"}"
            ))),
            AFTER_REFUSAL
        );
        assert!(
            p.last.is_empty(),
            "a node that stopped managing reports none"
        );
        assert_eq!(p.answered(None), AFTER_REFUSAL);
        // No dockerd at all: asked once, then not again before the pause.
        let t0 = Instant::now();
        assert!(p.ports(true, t0).is_empty());
        assert_eq!(p.next, t0 + AFTER_REFUSAL);
        // A node that is no manager is not asked, and reports nothing.
        p.answered(Some((200, SERVICES.as_bytes())));
        let next = p.next;
        assert!(p.ports(false, next).is_empty());
        assert_eq!(p.next, next, "not asked");
    }

    #[test]
    fn asks_a_real_socket_for_services() {
        use std::io::{Read, Write};
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("var/run")).unwrap();
        let l =
            std::os::unix::net::UnixListener::bind(super::super::docker_api::socket(root)).unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 256];
            let n = c.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"GET /services HTTP/1.0\r\n"));
            c.write_all(format!("HTTP/1.0 200 OK\r\n\r\n{SERVICES}").as_bytes())
                .unwrap();
        });
        let mut p = Poll::new(super::super::docker_api::socket(root));
        let now = Instant::now();
        assert_eq!(p.ports(true, now).len(), 2);
        t.join().unwrap();
        // Not due yet: the last answer stands, no question is asked.
        assert_eq!(p.ports(true, now + Duration::from_secs(1)).len(), 2);
    }
}
