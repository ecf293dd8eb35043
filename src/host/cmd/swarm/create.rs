//! `b2d swarm create NAME --nodes N [--managers M]`: machines NAME and
//! NAME-2 … NAME-N on one private network, made one after another (each
//! gets its own ports and address) and booted together by the code `b2d
//! up` runs, one line each on one display; then formed into a swarm
//! ([`super::form`]) and waited for until every node is Ready.

use super::docker::{Docker, OverSsh};
use super::form::{form, Node};
use super::{nodes, SwarmError, MAX_NODES};
use crate::host::cmd::flags::{EngineFlags, MachineFlags};
use crate::host::cmd::up::{self, Outcome, UpOptions};
use crate::host::cmd::{Context, Output};
use crate::host::network;
use crate::host::store::{Role, Store, SwarmMember};
use crate::host::ui::hints;
use crate::host::ui::multi_progress::MultiProgress;
use serde::Serialize;
use std::io::Write;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// How often `docker node ls` is asked while nodes become Ready.
const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: String,
    pub nodes: u32,
    pub managers: u32,
    /// `--network NET`; None: a network named after the swarm.
    pub network: Option<String>,
    /// What every node is made and booted with (`--iso`, `--memory`,
    /// `--timeout`…); its name, network and swarm are set for each node.
    pub node: UpOptions,
}

/// A node as `swarm create` made it.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedNode {
    pub name: String,
    pub role: Role,
    pub address: Ipv4Addr,
    pub docker_host: String,
    /// How it came up, e.g. `first boot, 52.3 s`.
    pub boot: String,
}

#[derive(Debug, Clone)]
pub struct Created {
    pub name: String,
    pub network: String,
    pub nodes: Vec<CreatedNode>,
    /// From the start of `swarm create` to every node Ready.
    pub secs: f64,
    /// What `up` had to say about a node, `NODE: note`.
    pub notes: Vec<String>,
}

/// `b2d swarm create NAME --nodes N [--managers M] [--network NET]` and
/// the flags of `up` that make and boot each node.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    pub name: String,
    /// How many nodes (machines).
    #[arg(long)]
    pub nodes: u32,
    /// How many of them are managers (the first ones); the rest are
    /// workers.
    #[arg(long, default_value_t = 1)]
    pub managers: u32,
    /// The private network (default: one named after the swarm).
    #[arg(long, value_name = "NET")]
    pub network: Option<String>,
    #[command(flatten)]
    pub machine: MachineFlags,
    /// Also make the docker context b2d-NAME (the first node) the
    /// current one.
    #[arg(long)]
    pub use_context: bool,
    #[command(flatten)]
    pub engine: EngineFlags,
}

/// `b2d swarm create`: one progress line a node on the terminal while it
/// works; the nodes and what to type next when they are Ready.
pub fn run(store: &Store, args: CreateArgs, cx: &mut Context) -> Result<Output, SwarmError> {
    let o = CreateOptions {
        nodes: args.nodes,
        managers: args.managers,
        network: args.network,
        node: UpOptions {
            use_context: args.use_context,
            ..UpOptions::new(args.name.clone(), args.machine, args.engine, cx)?
        },
        name: args.name,
    };
    let lines = cx.term.multi_progress(&node_names(&o.name, o.nodes));
    let created = create(store, &o, &lines, &OverSsh)?;
    drop(lines);
    Ok(created.render(&cx.exe))
}

/// The swarm's machines: NAME, NAME-2 … NAME-N.
pub fn node_names(name: &str, nodes: u32) -> Vec<String> {
    (1..=nodes)
        .map(|i| match i {
            1 => name.to_string(),
            i => format!("{name}-{i}"),
        })
        .collect()
}

/// The nodes to make and their roles (the first M managers), once the
/// options and the store allow them.
pub(super) fn plan(store: &Store, o: &CreateOptions) -> Result<Vec<(String, Role)>, SwarmError> {
    if !(1..=MAX_NODES).contains(&o.nodes) {
        return Err(SwarmError::Nodes(o.nodes));
    }
    if !(1..=o.nodes).contains(&o.managers) {
        return Err(SwarmError::Managers {
            managers: o.managers,
            nodes: o.nodes,
        });
    }
    let names = node_names(&o.name, o.nodes);
    for n in &names {
        crate::host::store::validate_name(n)?;
    }
    if let Ok(existing) = nodes(store, &o.name) {
        return Err(SwarmError::Exists {
            name: o.name.clone(),
            nodes: super::names(&existing),
        });
    }
    if let Some(taken) = names.iter().find(|n| store.exists(n)) {
        return Err(SwarmError::Taken {
            name: o.name.clone(),
            machine: taken.clone(),
        });
    }
    Ok(names
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            let role = if (i as u32) < o.managers {
                Role::Manager
            } else {
                Role::Worker
            };
            (n, role)
        })
        .collect())
}

/// `b2d swarm create`: progress on `lines` (one line a node, in
/// [`node_names`] order), Docker driven through `docker`.
pub fn create<W: Write + Send>(
    store: &Store,
    o: &CreateOptions,
    lines: &MultiProgress<W>,
    docker: &dyn Docker,
) -> Result<Created, SwarmError> {
    let t0 = Instant::now();
    let net = match &o.network {
        None => o.name.clone(),
        Some(arg) => network::parse_arg(arg)?.ok_or(SwarmError::NoNetwork)?,
    };
    let plan = plan(store, o)?;
    let not_created = |why: String| SwarmError::NotCreated {
        name: o.name.clone(),
        why,
    };
    let opts: Vec<UpOptions> = plan
        .iter()
        .enumerate()
        .map(|(i, (node, role))| UpOptions {
            name: node.clone(),
            network: Some(net.clone()),
            swarm: Some(SwarmMember {
                name: o.name.clone(),
                role: *role,
            }),
            ssh_port: None,
            docker_port: None,
            use_context: o.node.use_context && i == 0,
            ..o.node.clone()
        })
        .collect();
    // Made one at a time, so every node's first boot knows all the others.
    for (i, uo) in opts.iter().enumerate() {
        lines.phase(i, "creating");
        let made = up::create(store, uo, &mut lines.lane(i))
            .map_err(|e| not_created(format!("{}: {}", uo.name, crate::error_chain(&e))))?;
        if !made {
            // Made by another command since the plan: not this swarm's.
            return Err(SwarmError::Taken {
                name: o.name.clone(),
                machine: uo.name.clone(),
            });
        }
    }
    let booted: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = opts
            .iter()
            .enumerate()
            .map(|(i, uo)| s.spawn(move || up::start(store, uo, true, &mut lines.lane(i))))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut nodes = Vec::new();
    let mut failed = Vec::new();
    let mut created_nodes = Vec::new();
    let mut notes = Vec::new();
    for (i, (b, (name, role))) in booted.into_iter().zip(&plan).enumerate() {
        let (m, outcome) = match b {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                lines.finish(i, "failed");
                failed.push(format!("\n  {name}: {}", crate::error_chain(&e)));
                continue;
            }
            Err(_) => {
                lines.finish(i, "failed");
                failed.push(format!("\n  {name}: its boot thread failed"));
                continue;
            }
        };
        let (boot, said) = match &outcome {
            Outcome::Booted {
                secs, start, notes, ..
            } => (format!("{}, {secs:.1} s", start.name()), notes.clone()),
            Outcome::AlreadyRunning { notes, .. } => ("already running".into(), notes.clone()),
        };
        notes.extend(said.iter().map(|n| format!("{name}: {n}")));
        let Some(address) = m.config.network.as_ref().map(|a| a.address) else {
            failed.push(format!("\n  {name}: no address on network {net}"));
            continue;
        };
        created_nodes.push(CreatedNode {
            name: name.clone(),
            role: *role,
            address,
            docker_host: format!("tcp://127.0.0.1:{}", m.config.docker_port),
            boot,
        });
        nodes.push(Node {
            machine: m,
            role: *role,
            address,
        });
    }
    if !failed.is_empty() {
        return Err(not_created(format!(
            "nodes did not boot:{}",
            failed.concat()
        )));
    }
    let phase = |i: usize, what: &str| lines.phase(i, what);
    let within = o.node.timeout;
    let rows =
        form(docker, &nodes, within, POLL, &phase).map_err(|e| not_created(e.to_string()))?;
    for (i, n) in nodes.iter().enumerate() {
        let live = rows.iter().find(|r| r.hostname == n.machine.name);
        let how = live
            .map(|r| r.manager_status.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or(if n.role == Role::Manager {
                "manager"
            } else {
                "worker"
            });
        lines.finish(i, &format!("Ready ({})", how.to_lowercase()));
    }
    Ok(Created {
        name: o.name.clone(),
        network: net,
        nodes: created_nodes,
        secs: t0.elapsed().as_secs_f64(),
        notes,
    })
}

impl Created {
    /// The time and notes on stderr; the nodes and what to type next on
    /// stdout. `exe` spells the commands.
    pub fn render(&self, exe: &str) -> Output {
        let managers = self
            .nodes
            .iter()
            .filter(|n| n.role == Role::Manager)
            .count();
        let mut said = Output::default();
        for n in &self.notes {
            said.stderr += &format!("b2d: {n}\n");
        }
        let count = |n: usize, what: &str| match n {
            1 => format!("1 {what}"),
            n => format!("{n} {what}s"),
        };
        said.stderr += &format!(
            "Swarm \"{}\": {} Ready ({}, {}) {:.1} s after `swarm create` began.\n",
            self.name,
            count(self.nodes.len(), "node"),
            count(managers, "manager"),
            count(self.nodes.len() - managers, "worker"),
            self.secs
        );
        let mut rows = vec![[
            "NODE".to_string(),
            "ROLE".into(),
            "ADDRESS".into(),
            "DOCKER_HOST".into(),
            "BOOT".into(),
        ]];
        for n in &self.nodes {
            rows.push([
                n.name.clone(),
                n.role.to_string(),
                n.address.to_string(),
                n.docker_host.clone(),
                n.boot.clone(),
            ]);
        }
        said.stdout = crate::host::cmd::status::columns(&rows);
        said.stdout += &format!(
            "\nNodes reach each other on network {net} by name and address.\n\
             Drive the swarm from its first node:\n\
             \x20   eval \"$({env})\"\n\
             \x20   docker node ls\n\
             A node is an ordinary machine: `{exe} ssh {second}`, `{exe} stop {second}`.\n\
             Remove them all:\n\
             \x20   {exe} swarm rm {name}\n",
            net = self.network,
            env = hints::verb(exe, "env", &self.name),
            second = self
                .nodes
                .get(1)
                .map_or(self.name.as_str(), |n| n.name.as_str()),
            name = self.name,
        );
        said
    }
}
