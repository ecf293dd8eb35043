//! The ready line (boot step 8): one machine-readable status line on the
//! console once sshd and dockerd answer, or at the deadline anyway:
//! `b2d-ready {"ms":1234,"ip":["10.0.2.15"],"data":"/mnt/sda1","ssh":true,"docker":true}`

use serde::{Deserialize, Serialize};

/// Field order is the key order of the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub ms: u64,
    pub ip: Vec<String>,
    /// Data mount point; null when running from RAM.
    pub data: Option<String>,
    pub ssh: bool,
    pub docker: bool,
    /// Absent from the lines of agents older than the phases.
    #[serde(default)]
    pub phases: Phases,
}

/// When each boot phase ended, in ms since kernel start; null for one
/// that had not ended by the ready line (a service that never answered).
/// Field order is boot order and the key order of the line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Phases {
    /// The kernel and the initramfs stage: the agent's main stage starts.
    pub initramfs: Option<u64>,
    pub modules: Option<u64>,
    /// Disk and network run side by side, both after the modules.
    pub disk: Option<u64>,
    pub network: Option<u64>,
    /// The modules only the services need, loaded beside disk and network.
    pub docker_modules: Option<u64>,
    /// Swap, ssh host keys and the hostname.
    pub keys: Option<u64>,
    /// Host folders mounted.
    pub shares: Option<u64>,
    /// This boot's server certificate; the services start after it.
    pub certificate: Option<u64>,
    /// Port 22 accepts.
    pub sshd: Option<u64>,
    /// containerd accepts on its socket.
    pub containerd: Option<u64>,
    /// Docker's `/_ping` answers OK.
    pub dockerd: Option<u64>,
}

/// One phase from its start to its end, in ms since kernel start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub name: &'static str,
    pub start: u64,
    pub end: u64,
}

impl Span {
    pub fn ms(&self) -> u64 {
        self.end - self.start
    }
}

impl Phases {
    /// Each phase that ended, with the phases it waits for: it starts at
    /// the latest end among them (0 for the first).
    fn graph(&self) -> [(&'static str, Option<u64>, &'static [&'static str]); 11] {
        [
            ("initramfs", self.initramfs, &[]),
            ("modules", self.modules, &["initramfs"]),
            ("disk", self.disk, &["modules"]),
            ("network", self.network, &["modules"]),
            ("docker_modules", self.docker_modules, &["modules"]),
            ("keys", self.keys, &["disk", "network", "docker_modules"]),
            ("shares", self.shares, &["keys"]),
            ("certificate", self.certificate, &["shares"]),
            ("sshd", self.sshd, &["certificate"]),
            ("containerd", self.containerd, &["certificate"]),
            ("dockerd", self.dockerd, &["containerd", "certificate"]),
        ]
    }

    /// The phases that ended, in boot order, each with its start. A
    /// phase whose predecessors are unknown starts at the latest known
    /// end before it in boot order.
    pub fn spans(&self) -> Vec<Span> {
        let g = self.graph();
        let mut out: Vec<Span> = Vec::new();
        for (i, (name, end, after)) in g.iter().enumerate() {
            let Some(end) = *end else { continue };
            let known = |n: &&str| out.iter().find(|s| s.name == *n).map(|s| s.end);
            let start = after
                .iter()
                .filter_map(known)
                .max()
                .or_else(|| {
                    g[..i]
                        .iter()
                        .filter_map(|p| p.1)
                        .filter(|&e| e <= end)
                        .max()
                })
                .unwrap_or(0)
                .min(end);
            out.push(Span { name, start, end });
        }
        out
    }
}

pub const PREFIX: &str = "b2d-ready ";

impl Ready {
    /// The ready line in one console line (anything may precede it on the
    /// line: a login prompt, a carriage return); None when absent or when
    /// its JSON does not parse.
    pub fn parse_line(line: &str) -> Option<Ready> {
        let (_, json) = line.split_once(PREFIX)?;
        serde_json::from_str(json.trim()).ok()
    }

    /// The last ready line in a console log (the host reads the serial log
    /// with this); a line that does not parse is skipped.
    pub fn last_in(log: &str) -> Option<Ready> {
        log.lines().rev().find_map(Ready::parse_line)
    }

    pub fn line(&self) -> String {
        format!(
            "{PREFIX}{}",
            serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_exactly_the_agreed_keys_in_order() {
        let r = Ready {
            ms: 1234,
            ip: vec!["10.0.2.15".into()],
            data: Some("/mnt/sda1".into()),
            ssh: true,
            docker: true,
            phases: Phases {
                initramfs: Some(900),
                dockerd: Some(1200),
                ..Phases::default()
            },
        };
        assert_eq!(
            r.line(),
            r#"b2d-ready {"ms":1234,"ip":["10.0.2.15"],"data":"/mnt/sda1","ssh":true,"docker":true,"phases":{"initramfs":900,"modules":null,"disk":null,"network":null,"docker_modules":null,"keys":null,"shares":null,"certificate":null,"sshd":null,"containerd":null,"dockerd":1200}}"#
        );
        let ram = Ready {
            data: None,
            ip: vec![],
            ssh: false,
            phases: Phases::default(),
            ..r
        };
        assert_eq!(
            ram.line(),
            r#"b2d-ready {"ms":1234,"ip":[],"data":null,"ssh":false,"docker":true,"phases":{"initramfs":null,"modules":null,"disk":null,"network":null,"docker_modules":null,"keys":null,"shares":null,"certificate":null,"sshd":null,"containerd":null,"dockerd":null}}"#
        );
        // The host finds the last one in a noisy console log.
        let log = format!(
            "{}\r\nb2d login: {}\r\nb2d-ready {{broken\n",
            r.line(),
            ram.line()
        );
        assert_eq!(Ready::last_in(&log), Some(ram.clone()));
        assert_eq!(Ready::last_in("no line"), None);
        assert_eq!(
            Ready::parse_line(&format!("b2d login: {}\r", ram.line())),
            Some(ram)
        );
    }

    #[test]
    fn a_line_without_phases_still_parses() {
        let old = r#"b2d-ready {"ms":7,"ip":[],"data":null,"ssh":true,"docker":true}"#;
        let r = Ready::parse_line(old).unwrap();
        assert_eq!(r.phases, Phases::default());
        assert!(r.phases.spans().is_empty());
    }

    #[test]
    fn spans_start_where_what_they_wait_for_ends() {
        let p = Phases {
            initramfs: Some(2700),
            modules: Some(3000),
            disk: Some(4500),
            network: Some(5200),
            docker_modules: Some(4000),
            keys: Some(5300),
            shares: Some(5400),
            certificate: Some(5600),
            sshd: Some(6000),
            containerd: Some(9000),
            dockerd: Some(30000),
        };
        let s: Vec<(&str, u64, u64)> = p.spans().iter().map(|s| (s.name, s.start, s.end)).collect();
        assert_eq!(
            s,
            vec![
                ("initramfs", 0, 2700),
                ("modules", 2700, 3000),
                ("disk", 3000, 4500),
                ("network", 3000, 5200),
                ("docker_modules", 3000, 4000),
                ("keys", 5200, 5300),
                ("shares", 5300, 5400),
                ("certificate", 5400, 5600),
                ("sshd", 5600, 6000),
                ("containerd", 5600, 9000),
                ("dockerd", 9000, 30000),
            ]
        );
        // dockerd without a containerd seen: it starts with the services.
        let q = Phases {
            containerd: None,
            sshd: None,
            ..p
        };
        let d = q.spans().into_iter().find(|s| s.name == "dockerd").unwrap();
        assert_eq!((d.start, d.ms()), (5600, 24400));
        // Only an end: it spans from the latest known end before it.
        let lone = Phases {
            modules: Some(10),
            shares: Some(50),
            ..Phases::default()
        };
        let s: Vec<(&str, u64)> = lone.spans().iter().map(|s| (s.name, s.start)).collect();
        assert_eq!(s, vec![("modules", 0), ("shares", 10)]);
    }
}
