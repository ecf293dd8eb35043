//! `b2d swarm create|ls|rm`: a Docker Swarm (Docker's own distributed
//! engine) out of ordinary machines on one private network. b2d creates
//! and boots the machines and runs Docker's own `swarm init` and `swarm
//! join`; it adds no orchestration of its own. Each node stays an
//! ordinary machine (`b2d ssh NAME-2`, `b2d stop NAME-3`); which swarm
//! it belongs to, and as what, is kept in its `config.json`.

pub mod create;
pub mod docker;
pub mod form;
pub mod ls;
pub mod rm;

pub use create::{create, node_names, CreateOptions, Created};
pub use ls::{ls, render as render_ls, Listing};

use super::{Context, NoProgram, Output};
use crate::host::network::NetworkError;
use crate::host::store::{Machine, MachineError, Store};
use std::path::PathBuf;

/// Most nodes `swarm create` makes: a typo must not start hundreds of
/// VMs (each costs hundreds of MiB; see the README's figures).
pub const MAX_NODES: u32 = 32;

#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Program(#[from] NoProgram),
    #[error(transparent)]
    Json(#[from] crate::host::cmd::json::JsonError),
    #[error("--nodes {0}: a swarm has 1 to {MAX_NODES} nodes (e.g. --nodes 3)")]
    Nodes(u32),
    #[error("--managers {managers}: a swarm of {nodes} nodes has 1 to {nodes} managers (e.g. --managers 1)")]
    Managers { managers: u32, nodes: u32 },
    #[error("--network none: a swarm's nodes need a private network (leave --network out for one named after the swarm)")]
    NoNetwork,
    #[error("swarm \"{name}\" exists ({nodes}): see it with `b2d swarm ls {name}`, start a stopped node with `b2d up NODE`, or remove it with `b2d swarm rm {name}` first")]
    Exists { name: String, nodes: String },
    #[error("machine \"{machine}\" exists and is not a node of swarm \"{name}\": choose another swarm name, or remove the machine with `b2d rm {machine}`")]
    Taken { name: String, machine: String },
    #[error("no swarm named \"{name}\" (its nodes would be machines in {store}): make one with `b2d swarm create {name} --nodes 3`")]
    Unknown { name: String, store: PathBuf },
    #[error("swarm \"{name}\" not created: {why}\nIts nodes are left as they are: `b2d swarm ls {name}` shows them, `b2d logs NODE` a node's console, and `b2d swarm rm -f {name}` removes them all")]
    NotCreated { name: String, why: String },
    #[error("not removing swarm \"{name}\" ({nodes}) without confirmation: pass -f to remove its machines and their disks (`b2d swarm rm -f {name}`)")]
    Unconfirmed { name: String, nodes: String },
    #[error("swarm \"{name}\" not removed (`b2d swarm rm -f {name}` removes it without asking)")]
    Declined { name: String },
    #[error("swarm \"{name}\": {failed}")]
    NotRemoved { name: String, failed: String },
}

/// `b2d swarm create|ls|rm`.
// Parsed once per run: the size of a variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SwarmCmd {
    /// Create and boot NAME, NAME-2 … NAME-N on one private network (in
    /// parallel), `docker swarm init` the first, join the others, and wait
    /// until every node is Ready.
    Create(create::CreateArgs),
    /// Show a swarm's nodes: roles, states, addresses, and what the
    /// swarm says of each.
    Ls(ls::LsArgs),
    /// Remove every node of a swarm, with its disk.
    Rm(rm::RmArgs),
}

/// `b2d swarm …`: the sub-verb's own `run`.
pub fn run(store: &Store, cmd: SwarmCmd, cx: &mut Context) -> Result<Output, SwarmError> {
    match cmd {
        SwarmCmd::Create(args) => create::run(store, args, cx),
        SwarmCmd::Ls(args) => ls::run(store, args, cx),
        SwarmCmd::Rm(args) => rm::run(store, args, cx),
    }
}

/// The index of node `m` of swarm `name`: 1 for the first (named after
/// the swarm), N for `name-N`; None for a machine that is neither.
fn index(name: &str, m: &str) -> Option<u32> {
    if m == name {
        return Some(1);
    }
    m.strip_prefix(name)?.strip_prefix('-')?.parse().ok()
}

/// The machines of swarm `name`, first node first; an error when there
/// are none.
pub fn nodes(store: &Store, name: &str) -> Result<Vec<Machine>, SwarmError> {
    let mut v: Vec<Machine> = store
        .list()?
        .into_iter()
        // A machine whose config cannot be read is in none.
        .flatten()
        .filter(|m| m.config.swarm.as_ref().is_some_and(|s| s.name == name))
        .collect();
    if v.is_empty() {
        return Err(SwarmError::Unknown {
            name: name.into(),
            store: store.root.clone(),
        });
    }
    v.sort_by_key(|m| (index(name, &m.name).unwrap_or(u32::MAX), m.name.clone()));
    Ok(v)
}

fn names(nodes: &[Machine]) -> String {
    nodes
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
