//! What a machine's `config.json` keeps: the persisted types, in one
//! place that imports no feature (each feature works on them and
//! re-exports the ones it owns).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// What a machine is booted with; kept in `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub cpus: u32,
    pub memory_mib: u32,
    /// Virtual size of `disk.img` in bytes.
    pub disk_size: u64,
    /// Forwarded 127.0.0.1 ports, kept across boots so DOCKER_HOST stays.
    pub ssh_port: u16,
    pub docker_port: u16,
    /// Host folders shared at the same path; None (a machine from before
    /// shares) means the default, the user's home.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    /// `--mount-type`: virtiofs or 9p; None is auto (virtiofs where a
    /// usable virtiofsd is installed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_type: Option<crate::wire::guest_config::ShareFs>,
    /// The engine settings (`--engine-opt`, `--registry-mirror`…).
    #[serde(default, skip_serializing_if = "EngineConfig::is_empty")]
    pub engine: EngineConfig,
    /// Its private network and address there (`--network`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Attachment>,
    /// The swarm `b2d swarm create` made it a node of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SwarmMember>,
}

/// A machine's place in a swarm `b2d swarm create` built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmMember {
    /// The swarm's name: its first node's.
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        })
    }
}

/// A host folder shared at the same path in the guest (`--mount`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub path: PathBuf,
    #[serde(default)]
    pub readonly: bool,
}

/// A machine's place on a network, kept in its `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The network's name.
    pub name: String,
    pub address: Ipv4Addr,
}

/// `--daemon-json FILE` as a machine keeps it: the file's settings, read
/// and checked when it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonJson {
    pub from: PathBuf,
    pub settings: Map<String, Value>,
}

/// The engine settings in `config.json`, each as given (checked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct EngineConfig {
    /// `--engine-opt KEY=VALUE`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub opts: Vec<String>,
    /// `--engine-env NAME=VALUE`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registry_mirrors: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub insecure_registries: Vec<String>,
    /// `--engine-label KEY=VALUE`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemon_json: Option<DaemonJson>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub proxy_from_env: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ca_certs: Vec<CaCert>,
}

impl EngineConfig {
    pub fn is_empty(&self) -> bool {
        *self == EngineConfig::default()
    }
}

/// One certificate as a machine keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaCert {
    /// The file it came from.
    pub from: PathBuf,
    /// Its subject, e.g. `CN=Corp Root CA, O=Corp`.
    pub subject: String,
    pub pem: String,
}
