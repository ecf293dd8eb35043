//! `b2d ssh`: OpenSSH's own client, pinned to the machine. The guest's host
//! key was made by `b2d up` and written to the machine's known_hosts under
//! an alias, so checking is strict from the very first connection and the
//! user's own ~/.ssh/known_hosts is neither read nor written.
//!
//! The guest is not trusted with the user's agent or display: agent and
//! X11 forwarding are pinned off, so a `Host *` line with `ForwardAgent
//! yes` in ~/.ssh/config does not hand guest root the keys of every host
//! the user reaches (OpenSSH keeps the first value it reads, and `-o`
//! comes before the config files). `b2d ssh -A` forwards the agent when
//! asked. Port forwardings a config sets are left alone: `-L` users
//! rely on them (`ClearAllForwardings` would drop theirs too).

use super::{CmdError, Context, Output};
use crate::host::store::{Machine, Store, DEFAULT_NAME};

/// `b2d ssh [-A] [NAME] [-- CMD…]`.
#[derive(Debug, Clone, clap::Args)]
pub struct SshArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
    /// Forward your ssh agent to the machine (off by default, whatever
    /// ~/.ssh/config says: root in the guest could use your keys).
    #[arg(short = 'A', long = "forward-agent")]
    pub forward_agent: bool,
    #[arg(last = true)]
    pub cmd: Vec<String>,
}

/// `b2d ssh NAME`: the `ssh` that logs in to running machine `name` (and
/// runs `cmd` there, if given), for the binary to run in its place.
pub fn run(store: &Store, args: SshArgs, cx: &mut Context) -> Result<Output, CmdError> {
    let m = super::running(store, &args.name, &cx.exe)?;
    let mut c = crate::sys::run::command("ssh");
    c.args(ssh_args(&m, &args.cmd, args.forward_agent));
    Ok(Output::exec(c, "openssh-client"))
}

/// Seconds `ssh` may take to connect and finish its handshake (TCG and a
/// busy host included).
pub const SSH_CONNECT_SECS: u64 = 30;

/// The OpenSSH options that pin a connection to machine `m`: its own
/// key and known_hosts, strict host key checking, no passwords, no agent
/// or X11 forwarding, and a session that ends rather than hangs on a mute
/// guest. `b2d ssh`, `b2d cp` (scp) and `b2d ssh-config` all use them.
pub fn pinned_options(m: &Machine) -> Vec<(&'static str, String)> {
    pinned_options_with(m, false)
}

/// [`pinned_options`], with the agent forwarded when `agent` is set.
fn pinned_options_with(m: &Machine, agent: bool) -> Vec<(&'static str, String)> {
    let forward_agent = if agent { "yes" } else { "no" };
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
        ("ForwardAgent", forward_agent.into()),
        ("ForwardX11", "no".into()),
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
    option_args_with(m, false)
}

fn option_args_with(m: &Machine, agent: bool) -> Vec<String> {
    let mut a: Vec<String> = pinned_options_with(m, agent)
        .into_iter()
        .flat_map(|(k, v)| ["-o".to_string(), format!("{k}={v}")])
        .collect();
    a.extend(["-i".into(), m.ssh_key().display().to_string()]);
    a
}

/// The user and address `b2d ssh` logs in at.
pub const LOGIN: &str = "docker@127.0.0.1";

/// Arguments for `ssh` (without the program name) to reach `m` as docker,
/// running `cmd` if it is not empty; `agent`: forward the user's agent.
pub fn ssh_args(m: &Machine, cmd: &[String], agent: bool) -> Vec<String> {
    let mut a = option_args_with(m, agent);
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
    use crate::host::store::sample;
    use std::path::Path;

    #[test]
    fn strict_pinned_key_and_the_machine_identity() {
        let m = sample("/m/dev");
        let a = ssh_args(&m, &["docker".into(), "ps".into()], false).join(" ");
        for want in [
            "-o StrictHostKeyChecking=yes",
            "-o UserKnownHostsFile=/m/dev/known_hosts",
            "-o GlobalKnownHostsFile=/dev/null",
            "-o HostKeyAlias=b2d-dev",
            "-o IdentitiesOnly=yes",
            "-o ConnectTimeout=30",
            "-o ServerAliveInterval=15",
            "-o ForwardAgent=no",
            "-o ForwardX11=no",
            "-i /m/dev/id_ed25519 -p 40022 docker@127.0.0.1 -- docker ps",
        ] {
            assert!(a.contains(want), "{want} missing from {a}");
        }
        assert!(ssh_args(&m, &[], false).last().unwrap() == "docker@127.0.0.1");
        let a = ssh_args(&m, &[], true).join(" ");
        assert!(a.contains("-o ForwardAgent=yes"), "{a}");
        assert!(!a.contains("ForwardAgent=no"), "{a}");
    }

    /// What OpenSSH itself makes of the arguments (`ssh -G` prints the
    /// configuration it would use, and connects nowhere), under a user
    /// config that forwards the agent and X11 to every host.
    fn openssh_sees(args: &[String], config: &Path) -> String {
        let out = std::process::Command::new("ssh")
            .arg("-G")
            .arg("-F")
            .arg(config)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn a_host_star_in_the_users_config_forwards_nothing_to_the_guest() {
        let t = tempfile::tempdir().unwrap();
        let config = t.path().join("config");
        std::fs::write(
            &config,
            "Host *\n  ForwardAgent yes\n  ForwardX11 yes\n  LocalForward 8080 127.0.0.1:80\n",
        )
        .unwrap();
        let m = sample(t.path());
        let has = |seen: &str, line: &str| seen.lines().any(|l| l == line);
        let seen = openssh_sees(&ssh_args(&m, &[], false), &config);
        assert!(has(&seen, "forwardagent no"), "{seen}");
        assert!(has(&seen, "forwardx11 no"), "{seen}");
        assert!(
            has(&seen, "localforward 8080 [127.0.0.1]:80"),
            "a user's own forwards are kept: {seen}"
        );
        let seen = openssh_sees(&ssh_args(&m, &[], true), &config);
        assert!(has(&seen, "forwardagent yes"), "{seen}");
        assert!(has(&seen, "forwardx11 no"), "{seen}");
    }
}
