//! Forming a swarm out of running machines, with Docker's own commands
//! only: `docker swarm init` on the first node, advertising its address
//! on the private network; `docker swarm join` of the other managers one
//! at a time (each joins the Raft group), then of the workers together;
//! and `docker node ls` on the first node until every node is Ready.

use super::docker::{node_ls, parse_node_ls, shown, Docker, DockerError, NodeRow};
use crate::host::store::{Machine, Role};
use crate::wire::ports::SWARM_MANAGEMENT;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Where swarm's overlay networks take their /24s. Docker's default,
/// 10.0.0.0/8, hands out 10.0.2.0/24 to the third overlay network: the
/// subnet of QEMU's user network on every node, which containers on that
/// overlay could then no longer reach (the DNS server 10.0.2.3 among
/// them).
pub const ADDR_POOL: &str = "10.10.0.0/16";

/// A machine becoming a node.
#[derive(Debug, Clone)]
pub struct Node {
    pub machine: Machine,
    pub role: Role,
    /// Its address on the swarm's private network.
    pub address: Ipv4Addr,
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Why a swarm was not formed.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// A docker command failed on a node (`command` as shown to people:
    /// without the join token).
    #[error("machine \"{machine}\": `{command}` failed: {why}")]
    Command {
        machine: String,
        command: String,
        #[source]
        why: DockerError,
    },
    #[error("a join thread failed")]
    JoinThread,
    /// Each node not Ready, with what `docker node ls` on the leader says.
    #[error("not every node was Ready within {} s (`docker node ls` on {leader}: {})", within.as_secs(), waiting.join(", "))]
    NotReady {
        within: Duration,
        leader: String,
        waiting: Vec<String>,
    },
}

fn run(docker: &dyn Docker, n: &Node, words: Vec<String>) -> Result<String, FormError> {
    docker
        .run(&n.machine, &words)
        .map_err(|why| FormError::Command {
            machine: n.machine.name.clone(),
            command: shown(&words),
            why,
        })
}

/// Make `nodes` a swarm, the first the leader; `phase(i, what)` says
/// what node `i` is at. Waits up to `ready_within` (asking every `poll`)
/// for every node to be Ready; returns `docker node ls` then, or why not.
pub fn form(
    docker: &dyn Docker,
    nodes: &[Node],
    ready_within: Duration,
    poll: Duration,
    phase: &(dyn Fn(usize, &str) + Sync),
) -> Result<Vec<NodeRow>, FormError> {
    let Some(leader) = nodes.first() else {
        return Ok(Vec::new());
    };
    let lead = leader.address.to_string();
    phase(0, "docker swarm init");
    run(
        docker,
        leader,
        args(&[
            "swarm",
            "init",
            "--advertise-addr",
            &lead,
            "--default-addr-pool",
            ADDR_POOL,
        ]),
    )?;
    let token = |kind: &str| -> Result<String, FormError> {
        Ok(
            run(docker, leader, args(&["swarm", "join-token", "-q", kind]))?
                .trim()
                .to_string(),
        )
    };
    let join = |i: usize, n: &Node, token: &str| -> Result<(), FormError> {
        phase(i, &format!("joining as a {}", n.role));
        let remote = format!("{lead}:{SWARM_MANAGEMENT}");
        let own = n.address.to_string();
        run(
            docker,
            n,
            args(&[
                "swarm",
                "join",
                "--token",
                token,
                "--advertise-addr",
                &own,
                &remote,
            ]),
        )
        .map(drop)
    };
    let others: Vec<(usize, &Node)> = nodes.iter().enumerate().skip(1).collect();
    // Managers one at a time: each joins the Raft group in turn.
    let managers: Vec<_> = others
        .iter()
        .filter(|(_, n)| n.role == Role::Manager)
        .collect();
    if !managers.is_empty() {
        let t = token("manager")?;
        for (i, n) in managers {
            join(*i, n, &t)?;
        }
    }
    let workers: Vec<_> = others
        .iter()
        .filter(|(_, n)| n.role == Role::Worker)
        .collect();
    if !workers.is_empty() {
        let t = token("worker")?;
        let joined: Vec<Result<(), FormError>> = std::thread::scope(|s| {
            let handles: Vec<_> = workers
                .iter()
                .map(|(i, n)| {
                    let (join, t) = (&join, &t);
                    s.spawn(move || join(*i, n, t))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(FormError::JoinThread)))
                .collect()
        });
        joined.into_iter().collect::<Result<Vec<()>, FormError>>()?;
    }
    for i in 0..nodes.len() {
        phase(i, "waiting for every node to be Ready");
    }
    let start = Instant::now();
    loop {
        let rows = parse_node_ls(&run(docker, leader, node_ls())?);
        let waiting: Vec<String> = nodes
            .iter()
            .filter_map(|n| {
                let row = rows.iter().find(|r| r.hostname == n.machine.name);
                match row {
                    Some(r) if r.status == "Ready" => None,
                    Some(r) => Some(format!("{} is {}", n.machine.name, r.status)),
                    None => Some(format!("{} is not listed", n.machine.name)),
                }
            })
            .collect();
        if waiting.is_empty() {
            return Ok(rows);
        }
        if start.elapsed() >= ready_within {
            return Err(FormError::NotReady {
                within: ready_within,
                leader: leader.machine.name.clone(),
                waiting,
            });
        }
        std::thread::sleep(poll);
    }
}
