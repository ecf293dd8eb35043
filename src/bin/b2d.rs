//! `b2d`: the host companion. Argument parsing and printing only; the
//! verbs live in `b2d::host::cmd` and return what to print.

use anyhow::{Context, Result};
use b2d::disk::image::ImageFormat;
use b2d::disk::size::parse_size;
use b2d::disk::userdata::Compat;
use b2d::host::cmd::env::{EnvOptions, Shell};
use b2d::host::cmd::lifecycle::Confirm;
use b2d::host::cmd::up::{parse_memory, UpOptions};
use b2d::host::cmd::{
    boot_phases, disk as disk_cmd, env, lifecycle, logs, ports, ssh, status, up, Format, Said,
};
use b2d::host::hints;
use b2d::host::machine::{Store, DEFAULT_NAME};
use b2d::host::progress::Progress;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "b2d",
    version,
    about = "A boot2docker-like Docker host in a VM"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the machine if needed, boot it and print how to connect.
    Up {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
        /// ISO to boot (default: the one `make iso` built).
        #[arg(long)]
        iso: Option<PathBuf>,
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=255))]
        cpus: Option<u32>,
        /// Memory, e.g. 4G or 4096 (MiB).
        #[arg(long, value_parser = parse_memory)]
        memory: Option<u32>,
        /// Data disk size, e.g. 20G; larger than before grows the disk.
        #[arg(long, value_parser = parse_size)]
        disk_size: Option<u64>,
        /// 127.0.0.1 port forwarded to the guest's sshd (default: a free one).
        #[arg(long)]
        ssh_port: Option<u16>,
        /// 127.0.0.1 port forwarded to the Docker API (default: a free one).
        #[arg(long)]
        docker_port: Option<u16>,
        /// Seconds to wait for the guest to be ready.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Host directory shared at the same path in the guest (repeatable;
        /// DIR:ro read-only; `none` for no share). Default: your home.
        #[arg(long = "mount", value_name = "DIR[:ro]|none")]
        mounts: Vec<String>,
        /// How folders are shared: virtiofs, 9p, or auto (virtiofs where a
        /// virtiofsd is installed, else 9p). Remembered.
        #[arg(long, value_name = "virtiofs|9p|auto")]
        mount_type: Option<String>,
        /// Also make the docker context b2d-NAME the current one.
        #[arg(long)]
        use_context: bool,
    },
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
        #[arg(last = true)]
        cmd: Vec<String>,
    },
    /// Shut a machine down (ACPI power button; killed after --timeout).
    Stop {
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
        /// Seconds to wait for the guest to power off.
        #[arg(long, default_value_t = 90)]
        timeout: u64,
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
    /// Create or inspect b2d data disks.
    #[command(subcommand)]
    Disk(DiskCmd),
}

#[derive(Clone, Copy, ValueEnum)]
enum CompatArg {
    /// Exactly the four entries docker-machine writes.
    DockerMachine,
}

#[derive(Subcommand)]
enum DiskCmd {
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
    },
    /// Show the magic, userdata, partitions and filesystems of a disk or image.
    Inspect {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Errors may quote what a disk or a guest said: nothing in them
            // may drive the terminal (line breaks are kept).
            let msg = b2d::error_chain(e.as_ref());
            let lines: Vec<_> = msg.split('\n').map(b2d::util::printable).collect();
            eprintln!("b2d: error: {}", lines.join("\n"));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Print what a verb said: messages on stderr, results on stdout.
fn say(said: Said) -> Result<()> {
    let mut err = std::io::stderr().lock();
    err.write_all(said.err.as_bytes())
        .and_then(|()| err.flush())
        .context("writing to stderr")?;
    let mut out = std::io::stdout().lock();
    out.write_all(said.out.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

/// `rm`'s question on the terminal; the reply read from stdin.
fn ask(question: &str) -> String {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut reply = String::new();
    let _ = std::io::stdin().read_line(&mut reply);
    reply
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn run(cli: Cli) -> Result<()> {
    let exe = hints::command_name();
    match cli.cmd {
        Cmd::Up {
            name,
            iso,
            cpus,
            memory,
            disk_size,
            ssh_port,
            docker_port,
            timeout,
            mounts,
            mount_type,
            use_context,
        } => {
            let opts = UpOptions {
                name,
                iso,
                cpus,
                memory_mib: memory,
                disk_size,
                ssh_port,
                docker_port,
                timeout: Duration::from_secs(timeout),
                home: home(),
                mounts,
                mount_type,
                use_context,
                exe: std::env::current_exe()
                    .context("finding this program to start the host agent")?,
            };
            let mut progress = Progress::stderr();
            let (m, outcome) = up::up(&Store::from_env()?, &opts, &mut progress)?;
            drop(progress);
            say(up::render(&m, &outcome, &exe))
        }
        Cmd::Env { name, shell, unset } => {
            let opts = EnvOptions { name, shell, unset };
            let login_shell = std::env::var("SHELL").ok();
            let script = env::script(&Store::from_env()?, &opts, login_shell.as_deref(), &exe)?;
            say(Said::out(script))
        }
        Cmd::Ssh { name, cmd } => {
            use std::os::unix::process::CommandExt;
            let e = ssh::command(&Store::from_env()?, &name, &cmd, &exe)?.exec();
            Err(e).context("running ssh (install it with `sudo apt-get install openssh-client`)")
        }
        Cmd::Stop { name, timeout } => {
            let stopped =
                lifecycle::stop_named(&Store::from_env()?, &name, Duration::from_secs(timeout))?;
            say(stopped.render(&name))
        }
        Cmd::Suspend { name } => say(b2d::host::cmd::suspend::suspend_named(
            &Store::from_env()?,
            &name,
            &exe,
        )?),
        Cmd::Rm { name, force } => {
            let mut on_terminal = ask;
            let confirm = if std::io::stdin().is_terminal() {
                Confirm::Ask(&mut on_terminal)
            } else {
                Confirm::NoTerminal
            };
            say(lifecycle::rm(&Store::from_env()?, &name, force, confirm)?)
        }
        Cmd::Status {
            name,
            json,
            boot: true,
        } => say(Said::out(boot_phases::show(
            &Store::from_env()?,
            &name,
            Format::json(json),
        )?)),
        Cmd::Status { name, json, .. } => say(Said::out(status::show(
            &Store::from_env()?,
            &name,
            Format::json(json),
        )?)),
        Cmd::Ls { json } => say(Said::out(status::list(
            &Store::from_env()?,
            Format::json(json),
        )?)),
        Cmd::Logs { name, follow } => Ok(logs::show(
            &Store::from_env()?,
            &name,
            follow,
            &mut std::io::stdout().lock(),
        )?),
        Cmd::Ports { name, json } => say(Said::out(ports::show(
            &Store::from_env()?,
            &name,
            Format::json(json),
        )?)),
        Cmd::Agent { name } => Ok(b2d::host::agent_run::run(&Store::from_env()?.open(&name)?)?),
        Cmd::Ip { name } => say(Said::out(status::ip(&Store::from_env()?, &name, &exe)?)),
        Cmd::Disk(DiskCmd::Create {
            path,
            size,
            format,
            ssh_keys,
            compat,
            force,
            json,
        }) => {
            let opts = disk_cmd::CreateOptions {
                path,
                size,
                format,
                ssh_keys,
                compat: match compat {
                    Some(CompatArg::DockerMachine) => Compat::DockerMachine,
                    None => Compat::B2d,
                },
                force,
            };
            let report = disk_cmd::create(&opts, home().as_deref())?;
            say(Said::out(disk_cmd::render(&report, Format::json(json))))
        }
        Cmd::Disk(DiskCmd::Inspect { path, json }) => {
            let report = disk_cmd::inspect(&path)?;
            say(Said::out(disk_cmd::render(&report, Format::json(json))))
        }
    }
}
