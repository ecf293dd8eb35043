//! `b2d`: the host companion. Parses the command line, hands each verb
//! its arguments whole with a context (`b2d::host::cmd`: how `b2d` is
//! spelled, the user's home and shell, this terminal), and prints the
//! output it returns.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

#[path = "b2d/cli.rs"]
mod cli;

use anyhow::{Context as _, Result};
use b2d::host::cmd::{self, Confirm, Context, Exec, Output, Terminal};
use b2d::host::store::Store;
use b2d::host::ui::hints;
use b2d::host::ui::multi_progress::MultiProgress;
use b2d::host::ui::progress::{Progress, Sink};
use clap::{CommandFactory, Parser};
use cli::{Cli, Cmd};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

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

fn run(cli: Cli) -> Result<()> {
    let mut term = Stdio {
        out: std::io::stdout(),
        ask,
    };
    let mut cx = Context {
        exe: hints::command_name(),
        home: std::env::var_os("HOME").map(PathBuf::from),
        login_shell: std::env::var("SHELL").ok(),
        term: &mut term,
    };
    let store = Store::from_env;
    let cx = &mut cx;
    let out = match cli.cmd {
        Cmd::Up(args) => cmd::up::run(&store()?, args, cx)?,
        Cmd::Swarm(sub) => cmd::swarm::run(&store()?, sub, cx)?,
        Cmd::Ports(args) => cmd::ports::run(&store()?, args, cx)?,
        Cmd::Agent(args) => cmd::agent::run(&store()?, args, cx)?,
        Cmd::Env(args) => cmd::env::run(&store()?, args, cx)?,
        Cmd::Ssh(args) => cmd::ssh::run(&store()?, args, cx)?,
        Cmd::Cp(args) => cmd::cp::run(&store()?, args, cx)?,
        Cmd::Stop(args) => cmd::stop::run(&store()?, args, cx)?,
        Cmd::Restart(args) => cmd::restart::run(&store()?, args, cx)?,
        Cmd::Kill(args) => cmd::kill::run(&store()?, args, cx)?,
        Cmd::Suspend(args) => cmd::suspend::run(&store()?, args, cx)?,
        Cmd::Rm(args) => cmd::rm::run(&store()?, args, cx)?,
        Cmd::Status(args) => cmd::status::run(&store()?, args, cx)?,
        Cmd::Ls(args) => cmd::ls::run(&store()?, args, cx)?,
        Cmd::Logs(args) => cmd::logs::run(&store()?, args, cx)?,
        Cmd::Ip(args) => cmd::ip::run(&store()?, args, cx)?,
        Cmd::Inspect(args) => cmd::inspect::run(&store()?, args, cx)?,
        Cmd::Url(args) => cmd::url::run(&store()?, args, cx)?,
        Cmd::SshConfig(args) => cmd::ssh_config::run(&store()?, args, cx)?,
        Cmd::Completion { shell } => completion(shell),
        Cmd::Disk(sub) => cmd::disk::run(sub, cx)?,
    };
    print(out)
}

/// `b2d completion SHELL`: clap's script over this binary's whole tree.
fn completion(shell: clap_complete::Shell) -> Output {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "b2d", &mut out);
    Output::stdout(String::from_utf8_lossy(&out))
}

/// Print what a verb said: messages on stderr, results on stdout; then
/// run the program it names in this one's place, if it names one.
fn print(out: Output) -> Result<()> {
    let mut err = std::io::stderr().lock();
    err.write_all(out.stderr.as_bytes())
        .and_then(|()| err.flush())
        .context("writing to stderr")?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.stdout.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    match out.exec {
        None => Ok(()),
        Some(e) => exec(e),
    }
}

/// Become `e`'s program; returns only if it cannot run.
fn exec(mut e: Exec) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let program = e.command.get_program().to_string_lossy().into_owned();
    let failed = e.command.exec();
    Err(failed).with_context(|| {
        format!(
            "running {program} (install it with `sudo apt-get install {}`)",
            e.package
        )
    })
}

/// This process's terminal: progress on stderr (redrawn in place when it
/// is a terminal), questions on stderr answered on stdin.
struct Stdio {
    out: std::io::Stdout,
    ask: fn(&str) -> String,
}

impl Terminal for Stdio {
    fn progress(&mut self) -> Box<dyn Sink + '_> {
        Box::new(Progress::stderr())
    }

    fn multi_progress(&mut self, names: &[String]) -> MultiProgress<Box<dyn Write + Send>> {
        let tty = std::io::stderr().is_terminal();
        MultiProgress::new(Box::new(std::io::stderr()), tty, names)
    }

    fn confirm(&mut self) -> Confirm<'_> {
        if std::io::stdin().is_terminal() {
            Confirm::Ask(&mut self.ask)
        } else {
            Confirm::NoTerminal
        }
    }

    fn stdout(&mut self) -> &mut dyn Write {
        &mut self.out
    }
}

/// `rm`'s question on the terminal; the reply read from stdin.
fn ask(question: &str) -> String {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut reply = String::new();
    let _ = std::io::stdin().read_line(&mut reply);
    reply
}
