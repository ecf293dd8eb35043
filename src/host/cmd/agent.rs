//! `b2d agent NAME` (hidden): the host agent of a running machine, which
//! `b2d up` starts as a detached copy of this program and which lives as
//! long as the machine's QEMU (see [`crate::host::agent`]).

use super::{Context, Output};
use crate::host::store::{MachineError, Store};

/// `b2d agent NAME`.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentCmdError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error(transparent)]
    Agent(#[from] std::io::Error),
}

/// Serve machine `name` until its QEMU ends; nothing to print (the agent
/// writes to its own log).
pub fn run(store: &Store, args: AgentArgs, _cx: &mut Context) -> Result<Output, AgentCmdError> {
    crate::host::agent::run(&store.open(&args.name)?)?;
    Ok(Output::default())
}
