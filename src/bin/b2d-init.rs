//! Guest PID 1. Thin: dispatches on argv; the agent logic lives in
//! `b2d::guest`.
//!
//! - no arguments, as PID 1: boot;
//! - `deconfig|bound|renew|leasefail|nak`: udhcpc hook (set
//!   `B2D_HOOK_DRY_RUN=1` to print the actions instead of doing them);
//! - `prepare-disk [--device DEV]... --target DIR [--json]`;
//! - `poweroff` / `reboot` (also as argv[0]): ask PID 1 to shut down;
//! - `--version`.

#![deny(clippy::unwrap_used, clippy::expect_used)]

use anyhow::{bail, Context, Result};
use b2d::guest::disk::failpoint::Failpoint;
use b2d::guest::disk::{self, PrepareOptions};
use b2d::guest::{boot, logger, network, shutdown};
use b2d::sys::{PowerAction, RealSys};
use std::collections::HashMap;
use std::path::PathBuf;

const USAGE: &str = "\
usage: b2d-init                      (as PID 1: boot the system)
       b2d-init prepare-disk [--device DEV]... [--target DIR] [--sys DIR] [--dev DIR] [--json]
       b2d-init poweroff | reboot
       b2d-init deconfig|bound|renew|leasefail|nak   (udhcpc hook)
       b2d-init --version";

const PREPARE_USAGE: &str = "\
usage: b2d-init prepare-disk [--device DEV]... [--target DIR] [--sys DIR] [--dev DIR] [--no-format] [--json]
                             [--failpoint POINT]

Find the b2d data disk (or a disk to format), format it crash-safely if
needed, mount it under TARGET/mnt/<partition> and set up the persistence
binds. Without --device, every disk under SYS/block is considered.

  --device DEV   a candidate whole disk (repeatable)
  --target DIR   root to mount under (default /)
  --sys DIR      sysfs root (default /sys)
  --dev DIR      device root (default /dev)
  --no-format    only mount an existing data filesystem (b2d.noformat)
  --json         print the outcome as JSON
  --failpoint P  kill this process with SIGKILL at format step P (journal,
                 gpt, mkfs, populate, mkswap or commit): the power-cut tests";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let argv0 = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    let rest: Vec<String> = args.iter().skip(1).cloned().collect();
    let code = match dispatch(&argv0, &rest) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("b2d-init: {}", b2d::error_chain(e.as_ref()));
            1
        }
    };
    std::process::exit(code);
}

fn dispatch(argv0: &str, args: &[String]) -> Result<i32> {
    match argv0 {
        "poweroff" => return request(PowerAction::PowerOff),
        "reboot" => return request(PowerAction::Reboot),
        _ => {}
    }
    // As PID 1 the kernel may hand over stray command-line words as
    // arguments; PID 1 always boots.
    if std::process::id() == 1 {
        boot::run();
    }
    let Some(cmd) = args.first() else {
        bail!("b2d-init is PID 1; use a subcommand\n{USAGE}");
    };
    match cmd.as_str() {
        "--version" | "-V" | "version" => {
            println!("b2d-init {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        "--help" | "-h" | "help" => {
            println!("{USAGE}");
            Ok(0)
        }
        "poweroff" => request(PowerAction::PowerOff),
        "reboot" => request(PowerAction::Reboot),
        "prepare-disk" => prepare_disk(&args[1..]),
        e if network::HOOK_EVENTS.contains(&e) => dhcp_hook(e),
        other => bail!("unknown command \"{}\"\n{USAGE}", other.escape_debug()),
    }
}

fn request(action: PowerAction) -> Result<i32> {
    shutdown::request_pid1(action)?;
    Ok(0)
}

fn dhcp_hook(event: &str) -> Result<i32> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let plan = network::hook_plan(event, &env)?;
    if env.get("B2D_HOOK_DRY_RUN").is_some_and(|v| v == "1") {
        for c in &plan.commands {
            println!("{}", c.join(" "));
        }
        if let Some(rc) = &plan.resolv_conf {
            print!("# /etc/resolv.conf\n{rc}");
        }
        return Ok(0);
    }
    network::apply_hook(&RealSys, &plan, std::path::Path::new("/etc/resolv.conf"))?;
    Ok(0)
}

fn prepare_disk(args: &[String]) -> Result<i32> {
    let mut opts = PrepareOptions {
        devices: vec![],
        target: PathBuf::from("/"),
        sys_root: PathBuf::from("/sys"),
        dev_root: PathBuf::from("/dev"),
        no_format: false,
        failpoint: None,
    };
    let mut json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .map(PathBuf::from)
                .with_context(|| format!("{name} needs a value\n{PREPARE_USAGE}"))
        };
        match a.as_str() {
            "--help" | "-h" => {
                println!("{PREPARE_USAGE}");
                return Ok(0);
            }
            "--json" => json = true,
            "--no-format" => opts.no_format = true,
            "--device" => opts.devices.push(value("--device")?),
            "--target" => opts.target = value("--target")?,
            "--sys" => opts.sys_root = value("--sys")?,
            "--dev" => opts.dev_root = value("--dev")?,
            "--failpoint" => {
                let p = value("--failpoint")?;
                opts.failpoint = Some(Failpoint::parse(&p.to_string_lossy())?);
            }
            other => bail!(
                "prepare-disk: unknown argument \"{}\"\n{PREPARE_USAGE}",
                other.escape_debug()
            ),
        }
    }
    logger::init(log::LevelFilter::Info);
    let out = disk::prepare(&RealSys, &opts).context("prepare-disk")?;
    if json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        let show = |p: &Option<PathBuf>| p.as_ref().map_or("-".into(), |p| p.display().to_string());
        println!("action:     {}", out.action);
        println!("device:     {}", show(&out.device));
        println!("partition:  {}", show(&out.partition));
        println!("mountpoint: {}", show(&out.mountpoint));
        println!("swap:       {}", show(&out.swap));
        for n in &out.notes {
            println!("note:       {n}");
        }
    }
    Ok(0)
}
