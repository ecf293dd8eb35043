//! A machine's engine settings as the guest applies them at every boot:
//! dockerd's `daemon.json`, dockerd's environment (proxies, `--engine-env`)
//! and extra CA certificates for the guest's trust store. The host
//! validates and merges what the user gave (`b2d up --engine-opt …`) into
//! one [`Engine`]; it travels in the userdata archive as `.b2d/engine.json`
//! when a disk is made, and in the per-boot fw_cfg config
//! ([`super::guest_config`]) of every QEMU boot, which wins.
//!
//! Each setting lives in exactly one place: everything the user sets goes
//! into `daemon.json`, and b2d's own settings stay dockerd flags
//! (`-H`, `--tls*`, `--containerd`), never keys of the file: dockerd
//! refuses a directive given both ways. [`B2D_KEYS`] are those keys.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The name of the userdata extension entry (`.b2d/engine.json`), and of
/// the copy the guest keeps in its state directory.
pub const FILE_NAME: &str = "engine.json";

/// Largest engine settings either side accepts (the CA certificates are
/// most of it).
pub const MAX_SIZE: usize = 192 << 10;

/// The host's address as the guest sees it under QEMU's user networking.
pub const HOST_FROM_GUEST: &str = "10.0.2.2";

/// daemon.json keys b2d sets itself, as dockerd flags, or keeps to
/// itself (where Docker's state lives, which the data disk persists),
/// with what to use instead.
pub const B2D_KEYS: &[(&str, &str)] = &[
    (
        "hosts",
        "b2d sets dockerd's sockets itself (reach the API as `b2d env` says)",
    ),
    ("tls", TLS),
    ("tlsverify", TLS),
    ("tlscacert", TLS),
    ("tlscert", TLS),
    ("tlskey", TLS),
    ("containerd", "b2d runs dockerd's containerd itself"),
    (
        "data-root",
        "Docker's state is /var/lib/docker, which the data disk persists",
    ),
    (
        "exec-root",
        "b2d keeps dockerd's run-time state in /var/run",
    ),
    ("pidfile", "b2d supervises dockerd itself"),
];

const TLS: &str =
    "b2d sets dockerd's TLS itself (the client certificates are in `b2d env`'s DOCKER_CERT_PATH)";

/// Environment variables of dockerd b2d sets itself.
pub const B2D_ENV: &[&str] = &["PATH", "DOCKER_RAMDISK"];

/// Why b2d keeps daemon.json key `key` to itself, if it does.
pub fn b2d_key(key: &str) -> Option<&'static str> {
    B2D_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, why)| *why)
}

/// Why dockerd cannot be given variable `name` with `value`, if it cannot.
pub fn env_problem(name: &str, value: &str) -> Option<&'static str> {
    if !env_name_ok(name) {
        Some("not a variable name: letters, digits and _, not starting with a digit")
    } else if B2D_ENV.contains(&name) {
        Some("b2d sets it for dockerd itself")
    } else if value.contains(['\0', '\n']) {
        Some("the value holds a NUL or a newline")
    } else {
        None
    }
}

/// Whether `pem` looks like one PEM certificate (the host parsed it).
fn one_pem(pem: &str) -> bool {
    pem.trim_start().starts_with("-----BEGIN CERTIFICATE-----")
        && pem.trim_end().ends_with("-----END CERTIFICATE-----")
}

/// Whether `name` can be an environment variable's name.
pub fn env_name_ok(name: &str) -> bool {
    let mut cs = name.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Engine {
    /// dockerd's `/etc/docker/daemon.json` (empty: none is written).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub daemon: serde_json::Map<String, serde_json::Value>,
    /// dockerd's environment beside what b2d sets ([`B2D_ENV`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// PEM CA certificates added to the guest's trust store, one
    /// certificate each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_certs: Vec<String>,
}

impl Engine {
    pub fn is_empty(&self) -> bool {
        self.daemon.is_empty() && self.env.is_empty() && self.ca_certs.is_empty()
    }

    /// As JSON text (the userdata entry, the guest's copy).
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// What is wrong with settings from elsewhere (a disk, a config), each
    /// naming the key; [`Engine::usable`] drops those parts.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for k in self.daemon.keys() {
            if let Some(why) = b2d_key(k) {
                out.push(format!("daemon.json key \"{k}\" ignored: {why}"));
            }
        }
        for (k, v) in &self.env {
            if let Some(why) = env_problem(k, v) {
                out.push(format!(
                    "environment variable \"{}\" ignored: {why}",
                    k.escape_debug()
                ));
            }
        }
        for (i, pem) in self.ca_certs.iter().enumerate() {
            if !one_pem(pem) {
                out.push(format!(
                    "CA certificate {} ignored: not one PEM certificate",
                    i + 1
                ));
            }
        }
        out
    }

    /// These settings without what [`Engine::problems`] names.
    pub fn usable(&self) -> Engine {
        let mut e = self.clone();
        e.daemon.retain(|k, _| b2d_key(k).is_none());
        e.env.retain(|k, v| env_problem(k, v).is_none());
        e.ca_certs.retain(|pem| one_pem(pem));
        e
    }

    /// Settings read from JSON text; the error says what is wrong.
    pub fn parse(text: &[u8]) -> Result<Engine, ParseError> {
        if text.len() > MAX_SIZE {
            return Err(ParseError::TooLarge(text.len()));
        }
        Ok(serde_json::from_slice(text)?)
    }
}

/// Why text is not engine settings.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0} bytes, over the {MAX_SIZE} allowed")]
    TooLarge(usize),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Engine {
        let mut e = Engine::default();
        e.daemon
            .insert("registry-mirrors".into(), serde_json::json!(["https://m"]));
        e.env
            .insert("HTTP_PROXY".into(), "http://10.0.2.2:3128".into());
        e.ca_certs
            .push("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n".into());
        e
    }

    #[test]
    fn settings_round_trip_and_empty_parts_are_left_out() {
        let e = sample();
        assert_eq!(Engine::parse(&e.to_json()).unwrap(), e);
        assert_eq!(
            serde_json::to_string(&Engine::default()).unwrap(),
            "{}",
            "nothing to say, nothing written"
        );
        assert!(Engine::parse(b"{}").unwrap().is_empty());
        let e = Engine::parse(b"{\"daemon\":[]}").unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        let big = vec![b' '; MAX_SIZE + 1];
        assert!(Engine::parse(&big)
            .unwrap_err()
            .to_string()
            .contains("over the"));
    }

    #[test]
    fn b2d_keys_and_bad_environment_are_named_and_dropped() {
        let mut e = sample();
        e.daemon
            .insert("hosts".into(), serde_json::json!(["tcp://0.0.0.0:1"]));
        e.env.insert("PATH".into(), "/x".into());
        e.env.insert("1BAD".into(), "x".into());
        e.env.insert("TWO".into(), "a\nb".into());
        e.ca_certs.push("not pem".into());
        let p = e.problems();
        assert_eq!(
            p,
            vec![
                "daemon.json key \"hosts\" ignored: b2d sets dockerd's sockets itself (reach the API as `b2d env` says)",
                "environment variable \"1BAD\" ignored: not a variable name: letters, digits and _, not starting with a digit",
                "environment variable \"PATH\" ignored: b2d sets it for dockerd itself",
                "environment variable \"TWO\" ignored: the value holds a NUL or a newline",
                "CA certificate 2 ignored: not one PEM certificate",
            ]
        );
        for line in &p {
            crate::assert_readable(line);
        }
        assert_eq!(e.usable(), sample());
        assert!(sample().problems().is_empty());
    }

    #[test]
    fn names_and_keys() {
        for ok in ["HTTP_PROXY", "_x", "a1"] {
            assert!(env_name_ok(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A=B", "É"] {
            assert!(!env_name_ok(bad), "{bad}");
        }
        assert!(b2d_key("tlsverify").is_some());
        assert!(b2d_key("labels").is_none());
    }
}
