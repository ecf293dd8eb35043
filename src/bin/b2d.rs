//! `b2d`: the host companion. Argument parsing only; the logic lives in
//! `b2d::host`.

use anyhow::{Context, Result};
use b2d::disk::image::ImageFormat;
use b2d::disk::size::parse_size;
use b2d::disk::userdata::Compat;
use b2d::host::{disk_cmd, ssh_keys};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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

fn print(report: &disk_cmd::Inspection, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
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

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Disk(DiskCmd::Create {
            path,
            size,
            format,
            mut ssh_keys,
            compat,
            force,
            json,
        }) => {
            if ssh_keys.is_empty() {
                let home = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .context("HOME is not set; pass --ssh-key PUBFILE")?;
                ssh_keys.push(ssh_keys::default_key(&home)?);
            }
            let spec = disk_cmd::CreateSpec {
                path,
                size,
                format,
                authorized_keys: ssh_keys::authorized_keys(&ssh_keys)?,
                extensions: Vec::new(),
                compat: match compat {
                    Some(CompatArg::DockerMachine) => Compat::DockerMachine,
                    None => Compat::B2d,
                },
                force,
            };
            let report = disk_cmd::create(&spec)?;
            print(&report, json)
        }
        Cmd::Disk(DiskCmd::Inspect { path, json }) => print(&disk_cmd::inspect(&path)?, json),
    }
}
