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

/// Arguments for `ssh` (without the program name) to reach `m` as docker,
/// running `cmd` if it is not empty.
pub fn args(m: &Machine, cmd: &[String]) -> Vec<String> {
    let opt = |k: &str, v: &str| ["-o".to_string(), format!("{k}={v}")];
    let mut a: Vec<String> = [
        opt("StrictHostKeyChecking", "yes"),
        opt("UserKnownHostsFile", &m.known_hosts().display().to_string()),
        opt("GlobalKnownHostsFile", "/dev/null"),
        opt("HostKeyAlias", &m.host_key_alias()),
        opt("HostKeyAlgorithms", "ssh-ed25519"),
        opt("CheckHostIP", "no"),
        opt("UpdateHostKeys", "no"),
        opt("IdentitiesOnly", "yes"),
        opt("PasswordAuthentication", "no"),
        opt("KbdInteractiveAuthentication", "no"),
        opt("LogLevel", "ERROR"),
        // A guest that stops answering ends the session with an error
        // instead of a hang: the forward accepts at once, so the timeout
        // is what bounds the handshake (OpenSSH applies it there too).
        opt("ConnectTimeout", &SSH_CONNECT_SECS.to_string()),
        opt("ServerAliveInterval", "15"),
        opt("ServerAliveCountMax", "4"),
    ]
    .concat();
    a.extend([
        "-i".into(),
        m.ssh_key().display().to_string(),
        "-p".into(),
        m.config.ssh_port.to_string(),
        "docker@127.0.0.1".into(),
    ]);
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
