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
        };
        assert_eq!(
            r.line(),
            r#"b2d-ready {"ms":1234,"ip":["10.0.2.15"],"data":"/mnt/sda1","ssh":true,"docker":true}"#
        );
        let ram = Ready {
            data: None,
            ip: vec![],
            ssh: false,
            ..r
        };
        assert_eq!(
            ram.line(),
            r#"b2d-ready {"ms":1234,"ip":[],"data":null,"ssh":false,"docker":true}"#
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
}
