//! `b2d swarm ls NAME`: the swarm's nodes with their roles, machine
//! states and addresses, and what the swarm itself says of each
//! (`docker node ls` on a running manager: Ready or Down, Leader or
//! Reachable). A role changed with `docker node promote` shows as the
//! swarm has it.

use super::docker::{node_ls, parse_node_ls, Docker, NodeRow, OverSsh};
use super::{nodes, SwarmError};
use crate::host::cmd::status::{self, State};
use crate::host::cmd::{Context, Format, Output};
use crate::host::store::{Machine, Role, Store};
use crate::util::printable;
use serde::Serialize;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub name: String,
    pub role: Role,
    /// The machine's state.
    pub state: State,
    pub address: Option<Ipv4Addr>,
    pub docker_host: String,
    /// What the swarm says of the node (Ready, Down…), when a manager
    /// was asked.
    pub status: Option<String>,
    /// Leader, Reachable, Unreachable (managers only).
    pub manager_status: Option<String>,
    /// Active, Pause, Drain.
    pub availability: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub name: String,
    pub network: Option<String>,
    pub nodes: Vec<NodeView>,
    /// The manager `docker node ls` ran on.
    pub asked: Option<String>,
    /// Why the swarm itself was not asked, or did not answer.
    pub unasked: Option<String>,
}

fn recorded_role(m: &Machine) -> Role {
    m.config.swarm.as_ref().map_or(Role::Worker, |s| s.role)
}

pub(super) fn view(m: &Machine, state: State, row: Option<&NodeRow>) -> NodeView {
    let role = match row {
        Some(r) if r.manager_status.is_empty() => Role::Worker,
        Some(_) => Role::Manager,
        None => recorded_role(m),
    };
    // What the swarm says comes from a guest: printable.
    let some = |s: &str| (!s.is_empty()).then(|| printable(s).into_owned());
    NodeView {
        name: m.name.clone(),
        role,
        state,
        address: m.config.network.as_ref().map(|a| a.address),
        docker_host: format!("tcp://127.0.0.1:{}", m.config.docker_port),
        status: row.and_then(|r| some(&r.status)),
        manager_status: row.and_then(|r| some(&r.manager_status)),
        availability: row.and_then(|r| some(&r.availability)),
    }
}

/// `b2d swarm ls NAME [--json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct LsArgs {
    pub name: String,
    #[arg(long)]
    pub json: bool,
}

/// `b2d swarm ls NAME`: [`ls`] over ssh, as a table or JSON.
pub fn run(store: &Store, args: LsArgs, _cx: &mut Context) -> Result<Output, SwarmError> {
    let listing = ls(store, &args.name, &OverSsh)?;
    Ok(Output::stdout(
        Format::json(args.json).render(&listing, render)?,
    ))
}

/// Swarm `name`'s nodes, with what `docker node ls` on a running manager
/// says of each.
pub fn ls(store: &Store, name: &str, docker: &dyn Docker) -> Result<Listing, SwarmError> {
    let nodes = nodes(store, name)?;
    let states: Vec<State> = nodes.iter().map(|m| status::read(m).state).collect();
    let manager = nodes
        .iter()
        .zip(&states)
        .find(|(m, s)| **s == State::Running && recorded_role(m) == Role::Manager)
        .map(|(m, _)| m);
    let (rows, asked, unasked) = match manager {
        None => (
            Vec::new(),
            None,
            Some(format!(
                "no manager of swarm \"{name}\" is running (`b2d up {name}` starts the first)"
            )),
        ),
        Some(m) => match docker.run(m, &node_ls()) {
            Ok(out) => (parse_node_ls(&out), Some(m.name.clone()), None),
            Err(e) => (
                Vec::new(),
                None,
                Some(format!(
                    "`docker node ls` on {} failed: {}",
                    m.name,
                    printable(&e.to_string())
                )),
            ),
        },
    };
    Ok(Listing {
        name: name.into(),
        network: nodes
            .first()
            .and_then(|m| m.config.network.as_ref().map(|a| a.name.clone())),
        nodes: nodes
            .iter()
            .zip(states)
            .map(|(m, st)| view(m, st, rows.iter().find(|r| r.hostname == m.name)))
            .collect(),
        asked,
        unasked,
    })
}

/// The human form of `b2d swarm ls`.
pub fn render(l: &Listing) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut rows = vec![[
        "NODE".to_string(),
        "ROLE".into(),
        "STATE".into(),
        "ADDRESS".into(),
        "SWARM".into(),
        "MANAGER".into(),
        "DOCKER_HOST".into(),
    ]];
    for n in &l.nodes {
        rows.push([
            n.name.clone(),
            n.role.to_string(),
            n.state.to_string(),
            n.address.map_or("-".into(), |a| a.to_string()),
            dash(&n.status),
            dash(&n.manager_status),
            n.docker_host.clone(),
        ]);
    }
    let mut out = status::columns(&rows);
    match (&l.asked, &l.unasked) {
        (Some(m), _) => out += &format!("(SWARM and MANAGER as `docker node ls` on {m} says)\n"),
        (None, Some(why)) => out += &format!("(SWARM and MANAGER unknown: {why})\n"),
        (None, None) => {}
    }
    out
}
