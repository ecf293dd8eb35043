//! What `b2d up` is asked: [`UpArgs`] as the command line gives it, and
//! [`UpOptions`], what `up` (and `restart` and `swarm create`, which run
//! it) work with.

use super::UpError;
use crate::host::cmd::flags::{EngineFlags, MachineFlags};
use crate::host::cmd::{Context, NoProgram};
use crate::host::engine::EngineArgs;
use crate::host::forward::fixed;
use crate::host::shares;
use crate::host::store::{SwarmMember, DEFAULT_NAME};
use crate::wire::guest_config::ShareFs;
use std::path::PathBuf;
use std::time::Duration;

/// `b2d up [NAME]` and its flags.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
    #[command(flatten)]
    pub machine: MachineFlags,
    /// 127.0.0.1 port forwarded to the guest's sshd (default: a free one).
    #[arg(long)]
    pub ssh_port: Option<u16>,
    /// 127.0.0.1 port forwarded to the Docker API (default: a free one).
    #[arg(long)]
    pub docker_port: Option<u16>,
    /// Also make the docker context b2d-NAME the current one.
    #[arg(long)]
    pub use_context: bool,
    /// Put a second NIC on the private network NET, shared with the
    /// other machines on NET of this host only (`none` leaves it).
    /// Remembered.
    #[arg(long, value_name = "NET|none")]
    pub network: Option<String>,
    #[command(flatten)]
    pub engine: EngineFlags,
}

impl UpArgs {
    pub fn options(self, cx: &Context) -> Result<UpOptions, NoProgram> {
        Ok(UpOptions {
            ssh_port: self.ssh_port,
            docker_port: self.docker_port,
            use_context: self.use_context,
            network: self.network,
            ..UpOptions::new(self.name, self.machine, self.engine, cx)?
        })
    }
}

/// What `up` works with: the command line's options, and what it needs
/// beside them (the home to share, this program for the host agent, the
/// swarm a node joins).
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub name: String,
    pub iso: Option<PathBuf>,
    pub cpus: Option<u32>,
    pub memory_mib: Option<u32>,
    pub disk_size: Option<u64>,
    pub ssh_port: Option<u16>,
    pub docker_port: Option<u16>,
    pub timeout: Duration,
    /// The user's home: a new machine also authorizes its default key,
    /// and shares it unless `--mount` says otherwise.
    pub home: Option<PathBuf>,
    /// `--mount DIR[:ro]` or `none`; empty keeps what the machine has.
    pub mounts: Vec<String>,
    /// `--mount-type virtiofs|9p|auto`; None keeps what the machine has.
    pub mount_type: Option<String>,
    /// Make `b2d-NAME` the docker CLI's current context.
    pub use_context: bool,
    /// `--engine-opt`, `--registry-mirror`…; empty keeps what the machine
    /// has.
    pub engine: EngineArgs,
    /// This binary, started again as the machine's host agent.
    pub exe: PathBuf,
    /// `--network NET` (or `none`); None keeps what the machine has.
    pub network: Option<String>,
    /// The swarm a new machine is made a node of (`b2d swarm create`).
    pub swarm: Option<SwarmMember>,
}

impl UpOptions {
    /// Machine `name` made and booted as `machine` and `engine` say (what
    /// `up` and `swarm create` share).
    pub fn new(
        name: String,
        machine: MachineFlags,
        engine: EngineFlags,
        cx: &Context,
    ) -> Result<UpOptions, NoProgram> {
        Ok(UpOptions {
            name,
            iso: machine.iso,
            cpus: machine.cpus,
            memory_mib: machine.memory,
            disk_size: machine.disk_size,
            timeout: Duration::from_secs(machine.timeout),
            home: cx.home.clone(),
            mounts: machine.mounts,
            mount_type: machine.mount_type,
            exe: cx.program()?,
            engine: engine.args(),
            ..Default::default()
        })
    }

    /// The `--mount-type` given: None if not given, Some(None) for auto.
    pub(super) fn mount_type(&self) -> Result<Option<Option<ShareFs>>, UpError> {
        self.mount_type
            .as_deref()
            .map(shares::parse_type)
            .transpose()
            .map_err(UpError::from)
    }

    pub(super) fn ports(&self) -> fixed::Wanted {
        fixed::Wanted {
            ssh: self.ssh_port,
            docker: self.docker_port,
        }
    }
}
