//! `b2d`: the host companion. Argument parsing and printing only; the
//! verbs live in `b2d::host::cmd` and return what to print.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

#[path = "b2d/cli.rs"]
mod cli;

use anyhow::{Context, Result};
use b2d::disk::userdata::Compat;
use b2d::host::cmd::env::EnvOptions;
use b2d::host::cmd::lifecycle::Confirm;
use b2d::host::cmd::swarm::{self, docker::OverSsh};
use b2d::host::cmd::up::UpOptions;
use b2d::host::cmd::{
    boot_phases, cp, disk as disk_cmd, env, inspect, kill, lifecycle, logs, ports, restart, ssh,
    ssh_config, status, up, url, Format, Said,
};
use b2d::host::store::Store;
use b2d::host::ui::board::Board;
use b2d::host::ui::hints;
use b2d::host::ui::progress::Progress;
use clap::{CommandFactory, Parser};
use cli::{Cli, Cmd, CompatArg, DiskCmd, EngineFlags, MachineFlags, SwarmCmd};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

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

/// This binary, started again as a machine's host agent.
fn this_exe() -> Result<PathBuf> {
    std::env::current_exe().context("finding this program to start the host agent")
}

/// What `up` and `swarm create` make and boot a machine with.
fn node_options(name: String, m: MachineFlags, engine: EngineFlags) -> Result<UpOptions> {
    Ok(UpOptions {
        name,
        iso: m.iso,
        cpus: m.cpus,
        memory_mib: m.memory,
        disk_size: m.disk_size,
        timeout: Duration::from_secs(m.timeout),
        home: home(),
        mounts: m.mounts,
        mount_type: m.mount_type,
        exe: this_exe()?,
        engine: engine.args(),
        ..Default::default()
    })
}

fn run(cli: Cli) -> Result<()> {
    let exe = hints::command_name();
    match cli.cmd {
        Cmd::Up {
            name,
            machine,
            ssh_port,
            docker_port,
            use_context,
            network,
            engine,
        } => {
            let opts = UpOptions {
                ssh_port,
                docker_port,
                use_context,
                network,
                ..node_options(name, machine, engine)?
            };
            let mut progress = Progress::stderr();
            let (m, outcome) = up::up(&Store::from_env()?, &opts, &mut progress)?;
            drop(progress);
            say(up::render(&m, &outcome, &exe))
        }
        Cmd::Swarm(SwarmCmd::Create {
            name,
            nodes,
            managers,
            network,
            machine,
            use_context,
            engine,
        }) => {
            let opts = swarm::CreateOptions {
                nodes,
                managers,
                network,
                node: UpOptions {
                    use_context,
                    ..node_options(name.clone(), machine, engine)?
                },
                name,
            };
            let board = Board::stderr(&swarm::node_names(&opts.name, opts.nodes));
            let created = swarm::create(&Store::from_env()?, &opts, &board, &OverSsh)?;
            drop(board);
            say(created.render(&exe))
        }
        Cmd::Swarm(SwarmCmd::Ls { name, json }) => {
            let listing = swarm::ls(&Store::from_env()?, &name, &OverSsh)?;
            say(Said::out(
                Format::json(json).render(&listing, swarm::render_ls)?,
            ))
        }
        Cmd::Swarm(SwarmCmd::Rm { name, force }) => {
            let mut on_terminal = ask;
            let confirm = if std::io::stdin().is_terminal() {
                Confirm::Ask(&mut on_terminal)
            } else {
                Confirm::NoTerminal
            };
            say(swarm::rm(&Store::from_env()?, &name, force, confirm)?)
        }
        Cmd::Env { name, shell, unset } => {
            let opts = EnvOptions { name, shell, unset };
            let login_shell = std::env::var("SHELL").ok();
            let script = env::script(&Store::from_env()?, &opts, login_shell.as_deref(), &exe)?;
            say(Said::out(script))
        }
        Cmd::Ssh {
            name,
            forward_agent,
            cmd,
        } => {
            use std::os::unix::process::CommandExt;
            let e = ssh::command(&Store::from_env()?, &name, &cmd, forward_agent, &exe)?.exec();
            Err(e).context("running ssh (install it with `sudo apt-get install openssh-client`)")
        }
        Cmd::Cp { src, dst } => {
            use std::os::unix::process::CommandExt;
            let e = cp::command(&Store::from_env()?, &src, &dst, &exe)?.exec();
            Err(e).context("running scp (install it with `sudo apt-get install openssh-client`)")
        }
        Cmd::Restart {
            name,
            stop_timeout,
            timeout,
        } => {
            let opts = UpOptions {
                name,
                timeout: Duration::from_secs(timeout),
                home: home(),
                exe: this_exe()?,
                ..Default::default()
            };
            let mut progress = Progress::stderr();
            let done = restart::restart(
                &Store::from_env()?,
                &opts,
                Duration::from_secs(stop_timeout),
                &mut progress,
            )?;
            drop(progress);
            say(done.render(&exe))
        }
        Cmd::Kill { name } => say(kill::kill_named(&Store::from_env()?, &name)?.render(&name)),
        Cmd::Inspect { name, format, .. } => say(Said::out(inspect::show(
            &Store::from_env()?,
            &name,
            format.as_deref(),
        )?)),
        Cmd::Url { name } => say(Said::out(url::url(&Store::from_env()?, &name, &exe)?)),
        Cmd::SshConfig { name } => say(Said::out(ssh_config::show(&Store::from_env()?, &name)?)),
        Cmd::Completion { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "b2d", &mut out);
            say(Said::out(String::from_utf8_lossy(&out).into_owned()))
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
        Cmd::Agent { name } => Ok(b2d::host::agent::run(&Store::from_env()?.open(&name)?)?),
        Cmd::Ip { name } => say(Said::out(status::ip(&Store::from_env()?, &name, &exe)?)),
        Cmd::Disk(DiskCmd::Create {
            path,
            size,
            format,
            ssh_keys,
            compat,
            force,
            json,
            engine,
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
                engine: engine.args(),
            };
            let report = disk_cmd::create(&opts, home().as_deref())?;
            say(Said::out(disk_cmd::render(&report, Format::json(json))?))
        }
        Cmd::Disk(DiskCmd::Inspect { path, json }) => {
            let report = disk_cmd::inspect(&path)?;
            say(Said::out(disk_cmd::render(&report, Format::json(json))?))
        }
    }
}
