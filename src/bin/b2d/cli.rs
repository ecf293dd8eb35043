//! `b2d`'s command line: every verb and flag (clap), and nothing else.

use b2d::disk::image::ImageFormat;
use b2d::disk::size::parse_size;
use b2d::host::cmd::env::Shell;
use b2d::host::cmd::up::parse_memory;
use b2d::host::engine::EngineArgs;
use b2d::host::store::DEFAULT_NAME;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "b2d",
    version,
    about = "A boot2docker-like Docker host in a VM"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

// Parsed once per run: the size of a variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Cmd {
    /// Create the machine if needed, boot it and print how to connect.
    Up {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
        #[command(flatten)]
        machine: MachineFlags,
        /// 127.0.0.1 port forwarded to the guest's sshd (default: a free one).
        #[arg(long)]
        ssh_port: Option<u16>,
        /// 127.0.0.1 port forwarded to the Docker API (default: a free one).
        #[arg(long)]
        docker_port: Option<u16>,
        /// Also make the docker context b2d-NAME the current one.
        #[arg(long)]
        use_context: bool,
        /// Put a second NIC on the private network NET, shared with the
        /// other machines on NET of this host only (`none` leaves it).
        /// Remembered.
        #[arg(long, value_name = "NET|none")]
        network: Option<String>,
        #[command(flatten)]
        engine: EngineFlags,
    },
    /// A Docker Swarm of machines on one private network: create, list
    /// or remove it.
    #[command(subcommand)]
    Swarm(SwarmCmd),
    /// Show the ports forwarded from this host's 127.0.0.1 to a machine.
    Ports {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The host agent of a running machine (started by `b2d up`).
    #[command(hide = true)]
    Agent { name: String },
    /// Print the docker CLI's environment for a machine.
    Env {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
        /// Shell syntax (default: from $SHELL).
        #[arg(long, value_enum)]
        shell: Option<Shell>,
        /// Print commands that clear the variables instead.
        #[arg(long)]
        unset: bool,
    },
    /// Log in to a machine as docker, or run CMD there.
    Ssh {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
        /// Forward your ssh agent to the machine (off by default, whatever
        /// ~/.ssh/config says: root in the guest could use your keys).
        #[arg(short = 'A', long = "forward-agent")]
        forward_agent: bool,
        #[arg(last = true)]
        cmd: Vec<String>,
    },
    /// Copy files or directories (recursively) between this host and a
    /// machine; NAME:PATH is the guest side, e.g. `b2d cp ./src dev:/home/docker/`.
    Cp {
        #[arg(value_name = "SRC")]
        src: String,
        #[arg(value_name = "DST")]
        dst: String,
    },
    /// Shut a machine down (ACPI power button; killed after --timeout).
    Stop {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
        /// Seconds to wait for the guest to power off.
        #[arg(long, default_value_t = 90)]
        timeout: u64,
    },
    /// Stop a machine (as `b2d stop`) and bring it up again; its disk,
    /// images, containers and volumes are kept.
    Restart {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
        /// Seconds to wait for the guest to power off.
        #[arg(long, default_value_t = 90)]
        stop_timeout: u64,
        /// Seconds to wait for the guest to be ready again.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Stop a machine at once, as pulling its plug (`b2d stop` is the
    /// clean way).
    Kill {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
    },
    /// Save a running machine's state and end its QEMU; `b2d up` resumes
    /// it in seconds, containers still running.
    Suspend {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
    },
    /// Remove a machine and its disk.
    Rm {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
        /// Do not ask; kill the machine first if it runs.
        #[arg(short, long)]
        force: bool,
    },
    /// Show a machine's state, addresses and persistence.
    Status {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
        #[arg(long)]
        json: bool,
        /// Where the last boot's time went: each phase, slowest first.
        #[arg(long)]
        boot: bool,
    },
    /// List machines.
    #[command(alias = "list")]
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Print a machine's serial console.
    Logs {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
        /// Keep printing until the machine stops.
        #[arg(short, long)]
        follow: bool,
    },
    /// Print the address the machine's ports are reached at from this host.
    Ip {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
    },
    /// Everything about a machine as JSON, or one --format template.
    Inspect {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
        /// A Go-template-like format, e.g. '{{.DockerHost}}' or
        /// '{{json .Engine}}'.
        #[arg(long, short = 'f', conflicts_with = "json")]
        format: Option<String>,
        /// JSON (the default).
        #[arg(long)]
        json: bool,
    },
    /// Print the Docker API's URL of a running machine.
    Url {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
    },
    /// Print an OpenSSH `Host b2d-NAME` block for ~/.ssh/config (or
    /// `b2d ssh-config NAME | ssh -F /dev/stdin b2d-NAME CMD`).
    SshConfig {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
    },
    /// Print the shell completion script for bash, zsh, fish, elvish or
    /// powershell, e.g. `source <(b2d completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Create or inspect b2d data disks.
    #[command(subcommand)]
    Disk(DiskCmd),
}

/// How a machine is made and booted, on `up` and `swarm create`.
#[derive(Args)]
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

// Parsed once per run: the size of a variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum SwarmCmd {
    /// Create and boot NAME, NAME-2 … NAME-N on one private network (in
    /// parallel), `docker swarm init` the first, join the others, and wait
    /// until every node is Ready.
    Create {
        name: String,
        /// How many nodes (machines).
        #[arg(long)]
        nodes: u32,
        /// How many of them are managers (the first ones); the rest are
        /// workers.
        #[arg(long, default_value_t = 1)]
        managers: u32,
        /// The private network (default: one named after the swarm).
        #[arg(long, value_name = "NET")]
        network: Option<String>,
        #[command(flatten)]
        machine: MachineFlags,
        /// Also make the docker context b2d-NAME (the first node) the
        /// current one.
        #[arg(long)]
        use_context: bool,
        #[command(flatten)]
        engine: EngineFlags,
    },
    /// Show a swarm's nodes: roles, states, addresses, and what the
    /// swarm says of each.
    Ls {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove every node of a swarm, with its disk.
    Rm {
        name: String,
        /// Do not ask; kill running nodes first.
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CompatArg {
    /// Exactly the four entries docker-machine writes.
    DockerMachine,
}

// Parsed once per run: the size of a variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum DiskCmd {
    /// Write a sparse data disk carrying the magic and your ssh key.
    Create {
        /// Image file to create.
        path: PathBuf,
        /// Virtual size, e.g. 20G or 2T.
        #[arg(long, value_parser = parse_size)]
        size: u64,
        #[arg(long, value_enum, default_value = "raw")]
        format: ImageFormat,
        /// Public key file (repeatable). Default: ~/.ssh/id_ed25519.pub, then ~/.ssh/id_rsa.pub.
        #[arg(long = "ssh-key", value_name = "PUBFILE")]
        ssh_keys: Vec<PathBuf>,
        /// Write the userdata exactly as docker-machine does.
        #[arg(long, value_enum)]
        compat: Option<CompatArg>,
        /// Replace an existing image file.
        #[arg(long)]
        force: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineFlags,
    },
    /// Show the magic, userdata, partitions and filesystems of a disk or image.
    Inspect {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// The engine settings, on `up` and `disk create`. Each list flag given
/// replaces the machine's list (`none` empties it); all are remembered.
/// docker-machine's `--engine-registry-mirror` and
/// `--engine-insecure-registry` are accepted as they are.
#[derive(Args, Default)]
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
