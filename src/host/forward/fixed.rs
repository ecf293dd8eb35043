//! Which 127.0.0.1 ports a machine's ssh and Docker API forwards take: an
//! explicit port must be free; a remembered one is kept while it is free
//! (so DOCKER_HOST stays the same across boots); else a fresh one the
//! kernel offers that no other machine remembers. Every check binds
//! 127.0.0.1 only: the forwards never listen on other addresses.

use crate::host::store::{Machine, MachineError, Store};
use std::net::{Ipv4Addr, TcpListener};

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("127.0.0.1:{port} ({what} of machine \"{machine}\") is in use by another program: free it or pick another port with --{what}-port")]
    InUse {
        port: u16,
        what: &'static str,
        machine: String,
    },
    #[error("no free port on 127.0.0.1 for the {what} of machine \"{machine}\": {source}; pass --{what}-port")]
    NoneFree {
        what: &'static str,
        machine: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Machine(#[from] MachineError),
}

/// Whether `port` on 127.0.0.1 can be bound now.
pub fn port_free(port: u16) -> bool {
    super::host_port_taken(crate::wire::ports::Proto::Tcp, port).is_none()
}

/// A port the kernel picks as free on 127.0.0.1.
pub fn any_free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The ports the machines other than `name` remember.
pub fn of_others(store: &Store, name: &str) -> Result<Vec<u16>, MachineError> {
    Ok(store
        .list()?
        .into_iter()
        // A machine whose config cannot be read has no ports to avoid.
        .flatten()
        .filter(|m| m.name != name)
        .flat_map(|m| [m.config.ssh_port, m.config.docker_port])
        .collect())
}

/// An explicit port must be free; a remembered one is kept if free; else
/// a fresh one the kernel offers, not in `taken`.
pub fn choose(
    explicit: Option<u16>,
    remembered: Option<u16>,
    taken: &[u16],
    what: &'static str,
    machine: &str,
) -> Result<u16, PortError> {
    if let Some(p) = explicit {
        return if port_free(p) {
            Ok(p)
        } else {
            Err(PortError::InUse {
                port: p,
                what,
                machine: machine.into(),
            })
        };
    }
    if let Some(p) = remembered.filter(|p| *p != 0 && port_free(*p)) {
        return Ok(p);
    }
    loop {
        let p = any_free_port().map_err(|source| PortError::NoneFree {
            what,
            machine: machine.into(),
            source,
        })?;
        if !taken.contains(&p) {
            return Ok(p);
        }
    }
}

/// The ssh and docker ports asked for (`None`: any), as `(ssh, docker)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    pub ssh: Option<u16>,
    pub docker: Option<u16>,
}

/// A remembered port that another program took, so the machine moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub what: &'static str,
    pub old: u16,
    pub new: u16,
}

impl std::fmt::Display for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (old, new) = (self.old, self.new);
        match self.what {
            "docker" => write!(
                f,
                "127.0.0.1:{old} is taken by another program: DOCKER_HOST is now tcp://127.0.0.1:{new} (run `b2d env` again)"
            ),
            what => write!(
                f,
                "127.0.0.1:{old} is taken by another program: {what} is now on port {new}"
            ),
        }
    }
}

/// Ports for a machine about to be created (nothing remembered yet).
pub fn for_new(store: &Store, name: &str, want: Wanted) -> Result<(u16, u16), PortError> {
    let mut taken = of_others(store, name)?;
    let ssh = choose(want.ssh, None, &taken, "ssh", name)?;
    taken.push(ssh);
    let docker = choose(want.docker, None, &taken, "docker", name)?;
    Ok((ssh, docker))
}

/// Ports for booting `m` again: its remembered ones where still free. The
/// new ports are set in `m.config`; those that moved are returned (docker
/// first: it changes DOCKER_HOST).
pub fn for_boot(store: &Store, m: &mut Machine, want: Wanted) -> Result<Vec<Moved>, PortError> {
    let mut taken = of_others(store, &m.name)?;
    let old = (m.config.ssh_port, m.config.docker_port);
    m.config.ssh_port = choose(want.ssh, Some(old.0), &taken, "ssh", &m.name)?;
    taken.push(m.config.ssh_port);
    m.config.docker_port = choose(want.docker, Some(old.1), &taken, "docker", &m.name)?;
    let mut moved = Vec::new();
    if m.config.docker_port != old.1 && want.docker.is_none() {
        moved.push(Moved {
            what: "docker",
            old: old.1,
            new: m.config.docker_port,
        });
    }
    if m.config.ssh_port != old.0 && want.ssh.is_none() {
        moved.push(Moved {
            what: "ssh",
            old: old.0,
            new: m.config.ssh_port,
        });
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::store::sample;

    #[test]
    fn a_taken_port_is_seen() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(!port_free(l.local_addr().unwrap().port()));
        assert!(port_free(any_free_port().unwrap()));
    }

    #[test]
    fn a_busy_explicit_port_is_an_error_and_a_busy_remembered_one_is_replaced() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = l.local_addr().unwrap().port();
        let e = choose(Some(busy), None, &[], "docker", "dev")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!(
                "127.0.0.1:{busy} (docker of machine \"dev\") is in use"
            )),
            "{e}"
        );
        let p = choose(None, Some(busy), &[], "docker", "dev").unwrap();
        assert_ne!(p, busy);
        let free = any_free_port().unwrap();
        assert_eq!(choose(None, Some(free), &[], "ssh", "dev").unwrap(), free);
    }

    #[test]
    fn a_taken_remembered_port_moves_and_says_so() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = l.local_addr().unwrap().port();
        let free = any_free_port().unwrap();
        let mut m = sample(store.dir("dev"));
        (m.config.ssh_port, m.config.docker_port) = (free, busy);
        let moved = for_boot(&store, &mut m, Wanted::default()).unwrap();
        assert_eq!(m.config.ssh_port, free);
        assert_ne!(m.config.docker_port, busy);
        assert_eq!(
            moved,
            [Moved {
                what: "docker",
                old: busy,
                new: m.config.docker_port
            }]
        );
        let said = moved[0].to_string();
        assert!(
            said.contains(&format!(
                "DOCKER_HOST is now tcp://127.0.0.1:{}",
                m.config.docker_port
            )),
            "{said}"
        );
        let ssh = Moved {
            what: "ssh",
            old: 1,
            new: 2,
        };
        assert_eq!(
            ssh.to_string(),
            "127.0.0.1:1 is taken by another program: ssh is now on port 2"
        );
    }

    #[test]
    fn a_new_machine_avoids_the_ports_others_remember() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        let other = sample(store.dir("dev"));
        std::fs::create_dir_all(&other.dir).unwrap();
        other.save_config().unwrap();
        assert_eq!(of_others(&store, "new").unwrap(), [40022, 40376]);
        assert!(of_others(&store, "dev").unwrap().is_empty());
        let (ssh, docker) = for_new(&store, "new", Wanted::default()).unwrap();
        assert_ne!(ssh, docker);
        for p in [ssh, docker] {
            assert!(![40022, 40376].contains(&p));
        }
    }
}
