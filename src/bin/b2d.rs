//! `b2d`: the host companion. Argument parsing only; the logic lives in
//! `b2d::host`.

use anyhow::{Context, Result};
use b2d::disk::image::ImageFormat;
use b2d::disk::size::parse_size;
use b2d::disk::userdata::Compat;
use b2d::host::cmd::env::Shell;
use b2d::host::cmd::up::{parse_memory, Outcome, UpOptions};
use b2d::host::cmd::Format;
use b2d::host::cmd::{disk as disk_cmd, env, lifecycle, logs, ssh, status};
use b2d::host::machine::{Store, DEFAULT_NAME};
use b2d::host::{hints, qemu};
use clap::{Parser, Subcommand, ValueEnum};
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
    },
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
            eprintln!("b2d: error: {}", b2d::error_chain(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

/// A machine that must be running for `verb`.
fn running(store: &Store, name: &str) -> Result<b2d::host::machine::Machine> {
    let m = store.open(name)?;
    if qemu::running_pid(&m).is_none() {
        anyhow::bail!(
            "machine {name:?} is not running: start it with `{}`",
            hints::verb(&hints::command_name(), "up", name)
        );
    }
    Ok(m)
}

/// Ask on the terminal before removing a stopped machine; without a
/// terminal, refuse (pass -f).
fn confirm_rm(m: &b2d::host::machine::Machine) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "b2d: not removing {:?} without confirmation: pass -f to remove it and its disk",
            m.name
        );
        return false;
    }
    eprint!(
        "Remove machine {:?} and its {} disk with all its images, containers and volumes? [y/N] ",
        m.name,
        b2d::disk::size::gib(m.config.disk_size)
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

fn run(cli: Cli) -> Result<()> {
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
            };
            let (m, outcome) = b2d::host::cmd::up::up(&Store::from_env()?, &opts)?;
            let exe = hints::command_name();
            match outcome {
                Outcome::AlreadyRunning { ignored } => {
                    if !ignored.is_empty() {
                        eprintln!(
                            "b2d: {:?} is running; not applied until it restarts (`{}` then up again): {}",
                            m.name,
                            hints::verb(&exe, "stop", &m.name),
                            ignored.join(", ")
                        );
                    }
                    println!(
                        "Machine {:?} is already running: `eval \"$({})\"` to use it.",
                        m.name,
                        hints::verb(&exe, "env", &m.name)
                    );
                }
                Outcome::Booted {
                    ready,
                    secs,
                    accel,
                    notes,
                } => {
                    for n in notes {
                        eprintln!("b2d: {n}");
                    }
                    eprintln!("Booted {:?} in {secs:.1} s ({}).", m.name, accel.name());
                    print!("{}", hints::connected(&m, &ready, &exe));
                }
            }
            Ok(())
        }
        Cmd::Env { name, shell, unset } => {
            let m = if unset {
                Store::from_env()?.open(&name)?
            } else {
                running(&Store::from_env()?, &name)?
            };
            let sh =
                shell.unwrap_or_else(|| Shell::from_path(std::env::var("SHELL").ok().as_deref()));
            let vars = env::vars(&m.name, m.config.docker_port, &m.cert_dir());
            let hint = env::hint_command(&hints::command_name(), &name, shell, unset);
            print!("{}", env::render(sh, &vars, unset, &hint));
            Ok(())
        }
        Cmd::Ssh { name, cmd } => {
            use std::os::unix::process::CommandExt;
            let m = running(&Store::from_env()?, &name)?;
            let e = std::process::Command::new("ssh")
                .args(ssh::args(&m, &cmd))
                .exec();
            Err(e).context("running ssh (install it with `sudo apt-get install openssh-client`)")
        }
        Cmd::Stop { name, timeout } => {
            let m = Store::from_env()?.open(&name)?;
            let _lock = m.lock()?;
            match lifecycle::stop(&m, Duration::from_secs(timeout)) {
                lifecycle::Stopped::Already => eprintln!("Machine {name:?} is not running."),
                lifecycle::Stopped::Clean => eprintln!("Machine {name:?} stopped."),
                lifecycle::Stopped::Killed { why } => {
                    eprintln!("Machine {name:?} killed: {why}.")
                }
            }
            Ok(())
        }
        Cmd::Rm { name, force } => {
            lifecycle::rm(&Store::from_env()?, &name, force, confirm_rm)?;
            eprintln!("Machine {name:?} removed.");
            Ok(())
        }
        Cmd::Status { name, json } => {
            let s = status::of(&Store::from_env()?.open(&name)?);
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", status::render(&s));
            }
            Ok(())
        }
        Cmd::Ls { json } => {
            let all: Vec<_> = Store::from_env()?.list()?.iter().map(status::of).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print!("{}", status::table(&all));
            }
            Ok(())
        }
        Cmd::Logs { name, follow } => {
            let m = Store::from_env()?.open(&name)?;
            logs::copy(&m, follow, &mut std::io::stdout().lock())
        }
        Cmd::Ip { name } => {
            running(&Store::from_env()?, &name)?;
            // User networking: the guest's ports are forwarded to loopback.
            println!("127.0.0.1");
            Ok(())
        }
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
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let report = disk_cmd::create(&opts, home.as_deref())?;
            print!("{}", disk_cmd::render(&report, Format::json(json)));
            Ok(())
        }
        Cmd::Disk(DiskCmd::Inspect { path, json }) => {
            print!(
                "{}",
                disk_cmd::render(&disk_cmd::inspect(&path)?, Format::json(json))
            );
            Ok(())
        }
    }
}
