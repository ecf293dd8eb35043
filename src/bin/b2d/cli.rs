//! `b2d`'s command tree: every verb, each carrying its own arguments
//! (`#[derive(clap::Args)]` structs that live with the verbs in
//! `b2d::host::cmd`), and nothing else.

use b2d::host::cmd::{
    agent, cp, disk, env, inspect, ip, kill, logs, ls, ports, restart, rm, ssh, ssh_config, status,
    stop, suspend, swarm, up, url,
};
use clap::{Parser, Subcommand};

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
    Up(up::UpArgs),
    /// A Docker Swarm of machines on one private network: create, list
    /// or remove it.
    #[command(subcommand)]
    Swarm(swarm::SwarmCmd),
    /// Show the ports forwarded from this host's 127.0.0.1 to a machine.
    Ports(ports::PortsArgs),
    /// The host agent of a running machine (started by `b2d up`).
    #[command(hide = true)]
    Agent(agent::AgentArgs),
    /// Print the docker CLI's environment for a machine.
    Env(env::EnvArgs),
    /// Log in to a machine as docker, or run CMD there.
    Ssh(ssh::SshArgs),
    /// Copy files or directories (recursively) between this host and a
    /// machine; NAME:PATH is the guest side, e.g. `b2d cp ./src dev:/home/docker/`.
    Cp(cp::CpArgs),
    /// Shut a machine down (ACPI power button; killed after --timeout).
    Stop(stop::StopArgs),
    /// Stop a machine (as `b2d stop`) and bring it up again; its disk,
    /// images, containers and volumes are kept.
    Restart(restart::RestartArgs),
    /// Stop a machine at once, as pulling its plug (`b2d stop` is the
    /// clean way).
    Kill(kill::KillArgs),
    /// Save a running machine's state and end its QEMU; `b2d up` resumes
    /// it in seconds, containers still running.
    Suspend(suspend::SuspendArgs),
    /// Remove a machine and its disk.
    Rm(rm::RmArgs),
    /// Show a machine's state, addresses and persistence.
    Status(status::StatusArgs),
    /// List machines.
    #[command(alias = "list")]
    Ls(ls::LsArgs),
    /// Print a machine's serial console.
    Logs(logs::LogsArgs),
    /// Print the address the machine's ports are reached at from this host.
    Ip(ip::IpArgs),
    /// Everything about a machine as JSON, or one --format template.
    Inspect(inspect::InspectArgs),
    /// Print the Docker API's URL of a running machine.
    Url(url::UrlArgs),
    /// Print an OpenSSH `Host b2d-NAME` block for ~/.ssh/config (or
    /// `b2d ssh-config NAME | ssh -F /dev/stdin b2d-NAME CMD`).
    SshConfig(ssh_config::SshConfigArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or
    /// powershell, e.g. `source <(b2d completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Create or inspect b2d data disks.
    #[command(subcommand)]
    Disk(disk::DiskCmd),
}
