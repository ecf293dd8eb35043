//! `b2d ssh`: OpenSSH's own client, pinned to the machine. The guest's host
//! key was made by `b2d up` and written to the machine's known_hosts under
//! an alias, so checking is strict from the very first connection and the
//! user's own ~/.ssh/known_hosts is neither read nor written.

use super::CmdError;
use crate::host::machine::{Machine, Store};

/// `b2d ssh NAME [-- CMD…]`: the `ssh` command to run (the binary execs
/// it) for running machine `name`.
pub fn command(
    store: &Store,
    name: &str,
    cmd: &[String],
    exe: &str,
) -> Result<std::process::Command, CmdError> {
    let m = super::running(store, name, exe)?;
    let mut c = std::process::Command::new("ssh");
    c.args(args(&m, cmd));
    Ok(c)
}

/// Seconds `ssh` may take to connect and finish its handshake (TCG and a
/// busy host included).
pub const SSH_CONNECT_SECS: u64 = 30;

/// The OpenSSH options that pin a connection to machine `m`: its own
/// key and known_hosts, strict host key checking, no passwords, and a
/// session that ends rather than hangs on a mute guest. `b2d ssh`,
/// `b2d cp` (scp) and `b2d ssh-config` all use them.
pub fn pinned_options(m: &Machine) -> Vec<(&'static str, String)> {
    vec![
        ("StrictHostKeyChecking", "yes".into()),
        ("UserKnownHostsFile", m.known_hosts().display().to_string()),
        ("GlobalKnownHostsFile", "/dev/null".into()),
        ("HostKeyAlias", m.host_key_alias()),
        ("HostKeyAlgorithms", "ssh-ed25519".into()),
        ("CheckHostIP", "no".into()),
        ("UpdateHostKeys", "no".into()),
        ("IdentitiesOnly", "yes".into()),
        ("PasswordAuthentication", "no".into()),
        ("KbdInteractiveAuthentication", "no".into()),
        ("LogLevel", "ERROR".into()),
        // A guest that stops answering ends the session with an error
        // instead of a hang: the forward accepts at once, so the timeout
        // is what bounds the handshake (OpenSSH applies it there too).
        ("ConnectTimeout", SSH_CONNECT_SECS.to_string()),
        ("ServerAliveInterval", "15".into()),
        ("ServerAliveCountMax", "4".into()),
    ]
}

/// [`pinned_options`] as `-o KEY=VALUE` arguments, then the key.
pub fn option_args(m: &Machine) -> Vec<String> {
    let mut a: Vec<String> = pinned_options(m)
        .into_iter()
        .flat_map(|(k, v)| ["-o".to_string(), format!("{k}={v}")])
        .collect();
    a.extend(["-i".into(), m.ssh_key().display().to_string()]);
    a
}

/// The user and address `b2d ssh` logs in at.
pub const LOGIN: &str = "docker@127.0.0.1";

/// Arguments for `ssh` (without the program name) to reach `m` as docker,
/// running `cmd` if it is not empty.
pub fn args(m: &Machine, cmd: &[String]) -> Vec<String> {
    let mut a = option_args(m);
    a.extend(["-p".into(), m.config.ssh_port.to_string(), LOGIN.into()]);
    if !cmd.is_empty() {
        a.push("--".into());
        a.extend(cmd.iter().cloned());
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::machine::sample;

    #[test]
    fn strict_pinned_key_and_the_machine_identity() {
        let m = sample("/m/dev");
        let a = args(&m, &["docker".into(), "ps".into()]).join(" ");
        for want in [
            "-o StrictHostKeyChecking=yes",
            "-o UserKnownHostsFile=/m/dev/known_hosts",
            "-o GlobalKnownHostsFile=/dev/null",
            "-o HostKeyAlias=b2d-dev",
            "-o IdentitiesOnly=yes",
            "-o ConnectTimeout=30",
            "-o ServerAliveInterval=15",
            "-i /m/dev/id_ed25519 -p 40022 docker@127.0.0.1 -- docker ps",
        ] {
            assert!(a.contains(want), "{want} missing from {a}");
        }
        assert!(args(&m, &[]).last().unwrap() == "docker@127.0.0.1");
    }
}
