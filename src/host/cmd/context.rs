//! What a verb gets from whoever runs it, beside the machine store and
//! its own arguments: how to spell `b2d` in the commands it suggests, the
//! user's home and shell, and the [`Terminal`] (progress while it works,
//! a question before it removes something, output that does not end).
//! The binary makes one from its process; the tests make their own.

use crate::host::ui::multi_progress::MultiProgress;
use crate::host::ui::progress::Sink;
use std::io::Write;
use std::path::PathBuf;

/// What a verb gets beside the store and its arguments.
pub struct Context<'a> {
    /// How the user invokes b2d: the commands a verb suggests are spelled
    /// with it (see [`crate::host::ui::hints::command_name`]).
    pub exe: String,
    /// The user's home (`$HOME`): a new machine shares it and authorizes
    /// its default ssh key; `disk create` takes that key too.
    pub home: Option<PathBuf>,
    /// The user's login shell (`$SHELL`): the syntax `env` speaks unless
    /// told.
    pub login_shell: Option<String>,
    pub term: &'a mut dyn Terminal,
}

impl Context<'_> {
    /// This program, started again as a machine's host agent: found
    /// when a verb that boots a machine asks, so no other verb needs it.
    pub fn program(&self) -> Result<PathBuf, NoProgram> {
        std::env::current_exe().map_err(NoProgram)
    }
}

/// This program's own path is unknown, so no host agent can be started.
#[derive(Debug, thiserror::Error)]
#[error("finding this program to start the host agent")]
pub struct NoProgram(#[source] pub std::io::Error);

/// The person at the terminal, as a verb reaches them while it runs
/// (what it has to say at the end goes in its [`super::Output`]).
pub trait Terminal {
    /// Where one long wait reports its progress (`up`, `restart`).
    fn progress(&mut self) -> Box<dyn Sink + '_>;
    /// One progress line each for machines `names`, booting together
    /// (`swarm create`).
    fn multi_progress(&mut self, names: &[String]) -> MultiProgress<Box<dyn Write + Send>>;
    /// How `rm` gets its yes short of `-f`.
    fn confirm(&mut self) -> Confirm<'_>;
    /// Standard output as it is written, for what does not end
    /// (`logs -f`).
    fn stdout(&mut self) -> &mut dyn Write;
}

/// How `rm` of a stopped machine gets its yes, short of `-f`.
pub enum Confirm<'a> {
    /// No terminal to ask on: refuse.
    NoTerminal,
    /// Put the question to the user; returns the reply.
    Ask(&'a mut dyn FnMut(&str) -> String),
}

/// How a [`TestTerminal`] answers a question.
#[cfg(test)]
pub(crate) type Answer = Box<dyn FnMut(&str) -> String>;

/// A terminal for tests: progress dropped, questions put to `ask` (none:
/// no terminal), what is streamed kept.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct TestTerminal {
    pub ask: Option<Answer>,
    pub streamed: Vec<u8>,
}

#[cfg(test)]
impl TestTerminal {
    /// A context for verbs run as `b2d`, with no home or shell.
    pub fn context(&mut self) -> Context<'_> {
        Context {
            exe: "b2d".into(),
            home: None,
            login_shell: None,
            term: self,
        }
    }
}

#[cfg(test)]
impl Terminal for TestTerminal {
    fn progress(&mut self) -> Box<dyn Sink + '_> {
        Box::new(crate::host::ui::progress::Quiet)
    }

    fn multi_progress(&mut self, names: &[String]) -> MultiProgress<Box<dyn Write + Send>> {
        MultiProgress::new(Box::new(std::io::sink()), false, names)
    }

    fn confirm(&mut self) -> Confirm<'_> {
        match &mut self.ask {
            None => Confirm::NoTerminal,
            Some(ask) => Confirm::Ask(ask.as_mut()),
        }
    }

    fn stdout(&mut self) -> &mut dyn Write {
        &mut self.streamed
    }
}
