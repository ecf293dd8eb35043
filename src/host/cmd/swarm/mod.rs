//! `b2d swarm create|ls|rm`: a Docker Swarm (Docker's own distributed
//! engine) out of ordinary machines on one private network. b2d creates
//! and boots the machines and runs Docker's own `swarm init` and `swarm
//! join`; it adds no orchestration of its own. Each node stays an
//! ordinary machine (`b2d ssh NAME-2`, `b2d stop NAME-3`); which swarm
//! it belongs to, and as what, is kept in its `config.json`.

mod create;
pub mod docker;
pub mod form;
mod ls;

pub use create::{create, node_names, CreateOptions, Created};
pub use ls::{ls, render as render_ls, Listing};

use super::lifecycle;
use super::Confirm;
use super::Output;
use crate::host::network::NetworkError;
use crate::host::store::{Machine, MachineError, Store};
use crate::host::vm;
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

/// `b2d swarm rm NAME`: every node killed (no clean shutdown: the disks
/// go too) and removed, after a yes or with `force`. A node's QEMU, host
/// agent (it ends with QEMU), virtiofsd, sockets and docker context go
/// with it.
pub fn rm(store: &Store, name: &str, force: bool, confirm: Confirm) -> Result<Output, SwarmError> {
    let nodes = nodes(store, name)?;
    if !force {
        let question = format!(
            "Remove swarm \"{name}\": machines {} with their disks, images, containers and volumes? [y/N] ",
            names(&nodes)
        );
        match confirm {
            Confirm::NoTerminal => {
                return Err(SwarmError::Unconfirmed {
                    name: name.into(),
                    nodes: names(&nodes),
                })
            }
            Confirm::Ask(ask) => {
                if !lifecycle::is_yes(&ask(&question)) {
                    return Err(SwarmError::Declined { name: name.into() });
                }
            }
        }
    }
    // All stopped first, so no node is told of the others' removal.
    for m in &nodes {
        if let Ok(_lock) = m.lock() {
            vm::stop_now(m);
        }
    }
    let mut said = Output::default();
    let mut failed = Vec::new();
    for m in &nodes {
        match lifecycle::rm(store, &m.name, true, Confirm::NoTerminal) {
            Ok(s) => said.stderr += &s.stderr,
            Err(e) => failed.push(crate::error_chain(&e)),
        }
    }
    if !failed.is_empty() {
        return Err(SwarmError::NotRemoved {
            name: name.into(),
            failed: failed.join("; "),
        });
    }
    said.stderr += &format!("Swarm \"{name}\" removed: {}.\n", names(&nodes));
    Ok(said)
}

#[cfg(test)]
mod tests;
