//! `b2d swarm rm NAME`: remove every node of a swarm with its disk. A
//! node's QEMU, host agent (it ends with QEMU), virtiofsd, sockets and
//! docker context go with it.

use super::{names, nodes, SwarmError};
use crate::host::cmd::lifecycle;
use crate::host::cmd::{Confirm, Context, Output};
use crate::host::store::Store;
use crate::host::vm;

/// `b2d swarm rm [-f] NAME`.
#[derive(Debug, Clone, clap::Args)]
pub struct RmArgs {
    pub name: String,
    /// Do not ask; kill running nodes first.
    #[arg(short, long)]
    pub force: bool,
}

/// `b2d swarm rm NAME`: [`remove`], asked on the terminal unless forced.
pub fn run(store: &Store, args: RmArgs, cx: &mut Context) -> Result<Output, SwarmError> {
    remove(store, &args.name, args.force, cx.term.confirm())
}

/// Every node of swarm `name` killed (no clean shutdown: the disks go
/// too) and removed, after a yes or with `force`.
pub fn remove(
    store: &Store,
    name: &str,
    force: bool,
    confirm: Confirm,
) -> Result<Output, SwarmError> {
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
