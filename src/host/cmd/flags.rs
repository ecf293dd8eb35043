//! The flag groups more than one verb takes: [`MachineFlags`] (how a
//! machine is made and booted: `up`, `swarm create`) and [`EngineFlags`]
//! (the Docker engine's settings: `up`, `swarm create`, `disk create`).

use crate::disk::size::parse_size;
use crate::host::engine::EngineArgs;
use clap::Args;
use std::path::PathBuf;

/// How a machine is made and booted, on `up` and `swarm create`.
#[derive(Debug, Clone, Args)]
pub struct MachineFlags {
    /// ISO to boot (default: the one `make iso` built).
    #[arg(long)]
    pub iso: Option<PathBuf>,
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=255))]
    pub cpus: Option<u32>,
    /// Memory, e.g. 4G or 4096 (MiB).
    #[arg(long, value_parser = parse_memory)]
    pub memory: Option<u32>,
    /// Data disk size, e.g. 20G; larger than before grows the disk.
    #[arg(long, value_parser = parse_size)]
    pub disk_size: Option<u64>,
    /// Seconds to wait for the guest to be ready.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Host directory shared at the same path in the guest (repeatable;
    /// DIR:ro read-only; `none` for no share). Default: your home.
    #[arg(long = "mount", value_name = "DIR[:ro]|none")]
    pub mounts: Vec<String>,
    /// How folders are shared: virtiofs, 9p, or auto (virtiofs where a
    /// virtiofsd is installed, else 9p). Remembered.
    #[arg(long, value_name = "virtiofs|9p|auto")]
    pub mount_type: Option<String>,
}

/// The engine settings, on `up` and `disk create`. Each list flag given
/// replaces the machine's list (`none` empties it); all are remembered.
/// docker-machine's `--engine-registry-mirror` and
/// `--engine-insecure-registry` are accepted as they are.
// The doc comments are the help texts, where a URL is plain text.
#[allow(rustdoc::bare_urls)]
#[derive(Debug, Clone, Args, Default)]
pub struct EngineFlags {
    /// A dockerd daemon flag, e.g. log-level=debug (repeatable; `none`
    /// clears them).
    #[arg(long = "engine-opt", value_name = "KEY=VALUE", help_heading = "Engine")]
    pub opts: Vec<String>,
    /// A variable of dockerd's environment (repeatable).
    #[arg(
        long = "engine-env",
        value_name = "NAME=VALUE",
        help_heading = "Engine"
    )]
    pub env: Vec<String>,
    /// A registry mirror, e.g. https://mirror.gcr.io (repeatable).
    #[arg(
        long = "registry-mirror",
        alias = "engine-registry-mirror",
        value_name = "URL",
        help_heading = "Engine"
    )]
    pub registry_mirrors: Vec<String>,
    /// A registry reached without TLS checks (repeatable).
    #[arg(
        long = "insecure-registry",
        alias = "engine-insecure-registry",
        value_name = "HOST[:PORT]",
        help_heading = "Engine"
    )]
    pub insecure_registries: Vec<String>,
    /// A label of the engine, e.g. env=dev (repeatable).
    #[arg(
        long = "engine-label",
        value_name = "KEY=VALUE",
        help_heading = "Engine"
    )]
    pub labels: Vec<String>,
    /// dockerd's daemon.json settings, merged under the flags (`none`
    /// drops them).
    #[arg(long = "daemon-json", value_name = "FILE", help_heading = "Engine")]
    pub daemon_json: Option<PathBuf>,
    /// Pass this shell's HTTP_PROXY, HTTPS_PROXY and NO_PROXY to dockerd
    /// at every boot (localhost becomes the host).
    #[arg(long, conflicts_with = "no_proxy_from_env", help_heading = "Engine")]
    pub proxy_from_env: bool,
    /// Stop passing the proxies.
    #[arg(long, help_heading = "Engine")]
    pub no_proxy_from_env: bool,
    /// A PEM CA certificate for the guest's trust store (repeatable;
    /// `none` removes them).
    #[arg(long = "ca-cert", value_name = "FILE", help_heading = "Engine")]
    pub ca_certs: Vec<PathBuf>,
}

impl EngineFlags {
    /// The settings as the engine room takes them.
    pub fn args(self) -> EngineArgs {
        EngineArgs {
            opts: self.opts,
            env: self.env,
            registry_mirrors: self.registry_mirrors,
            insecure_registries: self.insecure_registries,
            labels: self.labels,
            daemon_json: self.daemon_json,
            proxy_from_env: match (self.proxy_from_env, self.no_proxy_from_env) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            ca_certs: self.ca_certs,
        }
    }
}

/// The least memory a machine boots with, in MiB.
pub const MIN_MEMORY_MIB: u32 = 512;

/// Why a `--memory` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    #[error("\"{}\": {source}", input.escape_debug())]
    Number {
        input: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error(transparent)]
    Size(#[from] crate::disk::size::SizeError),
    #[error("\"{}\": memory must be at least {MIN_MEMORY_MIB} MiB (e.g. 2G or 2048)", .0.escape_debug())]
    Range(String),
}

/// `--memory`: a bare number is MiB (as QEMU's `-m`), else a size.
pub fn parse_memory(s: &str) -> Result<u32, MemoryError> {
    let mib = if s.trim().bytes().all(|b| b.is_ascii_digit()) && !s.trim().is_empty() {
        s.trim()
            .parse::<u64>()
            .map_err(|source| MemoryError::Number {
                input: s.into(),
                source,
            })?
    } else {
        crate::disk::size::parse_size(s)? >> 20
    };
    if mib < MIN_MEMORY_MIB as u64 || mib > u32::MAX as u64 {
        return Err(MemoryError::Range(s.into()));
    }
    Ok(mib as u32)
}
