//! `b2d ports [NAME]`: what reaches the machine from the host's 127.0.0.1:
//! the fixed forwards (ssh, the Docker API) and those the host agent made
//! for the guest's listening ports, then those it skipped and why. A
//! listener's name is the guest's: shown as a printable `comm`
//! ([`comm_shown`]), also from a `ports.json` an older agent wrote.

use super::{Context, Format, Output};
use crate::host::agent;
use crate::host::cmd::CmdError;
use crate::host::forward::{Skipped, State};
use crate::host::store::{Machine, Store, DEFAULT_NAME};
use crate::wire::ports::{comm_shown, Listener, Proto};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forward {
    pub host: String,
    pub guest: u16,
    pub proto: Proto,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ports {
    pub running: bool,
    /// Whether a host agent serves the machine now.
    pub agent: bool,
    pub forwards: Vec<Forward>,
    pub skipped: Vec<Skipped>,
}

fn forward(l: &Listener) -> Forward {
    Forward {
        host: format!("127.0.0.1:{}", l.port),
        guest: l.port,
        proto: l.proto,
        by: l.by.as_deref().map(comm_shown).unwrap_or_default(),
    }
}

/// The ports of machine `m`, given the agent's state (None: no agent).
pub fn listing(m: &Machine, running: bool, state: Option<&State>) -> Ports {
    let mut forwards = Vec::new();
    if running {
        for (port, guest, by) in [
            (m.config.ssh_port, 22, "sshd (b2d ssh)"),
            (m.config.docker_port, 2376, "dockerd (DOCKER_HOST)"),
        ] {
            forwards.push(Forward {
                host: format!("127.0.0.1:{port}"),
                guest,
                proto: Proto::Tcp,
                by: by.into(),
            });
        }
    }
    if let Some(s) = state {
        forwards.extend(s.active.iter().map(forward));
    }
    Ports {
        running,
        agent: state.is_some(),
        forwards,
        skipped: state
            .map(|s| s.skipped.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|s| Skipped {
                by: s.by.as_deref().map(comm_shown),
                ..s
            })
            .collect(),
    }
}

pub fn render(name: &str, p: &Ports) -> String {
    if !p.running {
        return format!("Machine \"{name}\" is not running: no ports are forwarded.\n");
    }
    let mut out = format!("{:<22}{:<8}{:<7}{}\n", "HOST", "GUEST", "PROTO", "LISTENER");
    for f in &p.forwards {
        out += &format!("{:<22}{:<8}{:<7}{}\n", f.host, f.guest, f.proto, f.by);
    }
    if !p.agent {
        out += &format!(
            "The host agent is not running, so published ports are not forwarded: `b2d up {name}` starts it again.\n"
        );
    }
    for s in &p.skipped {
        let by =
            s.by.as_deref()
                .map(|b| format!(" ({b})"))
                .unwrap_or_default();
        out += &format!("not forwarded: {}/{}{by}: {}\n", s.port, s.proto, s.reason);
    }
    out
}

/// `b2d ports [NAME] [--json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct PortsArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
    #[arg(long)]
    pub json: bool,
}

/// `b2d ports NAME`: [`listing`] as text or JSON.
pub fn run(store: &Store, args: PortsArgs, _cx: &mut Context) -> Result<Output, CmdError> {
    let m = store.open(&args.name)?;
    let running = crate::host::vm::running_pid(&m).is_some();
    let state = agent::read_state(&m).filter(|_| agent::running(&m));
    let p = listing(&m, running, state.as_ref());
    let name = &args.name;
    Ok(Output::stdout(
        Format::json(args.json).render(&p, |p| render(name, p))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::store::sample;

    #[test]
    fn fixed_forwards_agent_forwards_and_skips_are_listed() {
        let m = sample("/m/dev");
        let st = State {
            pid: 1,
            active: vec![Listener {
                proto: Proto::Tcp,
                port: 18080,
                by: Some("docker-proxy".into()),
            }],
            skipped: vec![Skipped {
                proto: Proto::Udp,
                port: 53,
                by: None,
                reason: "ports below 1024 need root".into(),
            }],
        };
        let text = render("dev", &listing(&m, true, Some(&st)));
        assert_eq!(
            text,
            "HOST                  GUEST   PROTO  LISTENER\n\
             127.0.0.1:40022       22      tcp    sshd (b2d ssh)\n\
             127.0.0.1:40376       2376    tcp    dockerd (DOCKER_HOST)\n\
             127.0.0.1:18080       18080   tcp    docker-proxy\n\
             not forwarded: 53/udp: ports below 1024 need root\n"
        );
        let no_agent = render("dev", &listing(&m, true, None));
        assert!(
            no_agent.contains("`b2d up dev` starts it again"),
            "{no_agent}"
        );
        assert_eq!(
            render("dev", &listing(&m, false, None)),
            "Machine \"dev\" is not running: no ports are forwarded.\n"
        );
    }
}
