//! How `b2d swarm` drives Docker on its nodes: the docker CLI inside each
//! machine, over the machine's pinned ssh (the ISO carries the CLI; the
//! host need not), behind a trait so the swarm's forming is tested
//! without a VM. And what `docker node ls` says, parsed.

use crate::host::cmd::ssh;
use crate::host::store::Machine;
use serde::Deserialize;
use std::process::ExitStatus;

/// Runs `docker ARGS` on a machine: its stdout, or why it failed (the
/// command's last words).
pub trait Docker: Sync {
    fn run(&self, m: &Machine, args: &[String]) -> Result<String, DockerError>;
}

/// Why `docker ARGS` failed on a machine.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot run ssh ({0}): install it with `sudo apt-get install openssh-client`")]
    NoSsh(#[source] std::io::Error),
    /// It ran and failed: its exit status, and its last words on stderr
    /// made printable ([`crate::sys::run::tail`]).
    #[error("{}", said(*status, tail))]
    Failed { status: ExitStatus, tail: String },
}

fn said(status: ExitStatus, tail: &str) -> String {
    if tail.is_empty() {
        format!("{status} (nothing on stderr)")
    } else {
        tail.to_string()
    }
}

/// The docker CLI in the guest, over `b2d ssh`'s options.
pub struct OverSsh;

impl Docker for OverSsh {
    fn run(&self, m: &Machine, args: &[String]) -> Result<String, DockerError> {
        let remote = crate::sys::CommandLine::new("docker", args).to_string();
        let mut a = ssh::option_args(m);
        a.extend(["-o".into(), "BatchMode=yes".into()]);
        a.extend([
            "-p".into(),
            m.config.ssh_port.to_string(),
            ssh::LOGIN.into(),
        ]);
        a.extend(["--".into(), remote]);
        // Not run::output: its error would show the arguments, and a
        // join token among them is a secret (see `shown`).
        let out = crate::sys::run::command("ssh")
            .args(&a)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(DockerError::NoSsh)?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(DockerError::Failed {
            status: out.status,
            tail: crate::sys::run::tail(&out.stderr),
        })
    }
}

/// `docker ARGS` as shown to people: a join token is a secret (it lets
/// any machine join), so it is left out.
pub fn shown(args: &[String]) -> String {
    let mut out = vec!["docker".to_string()];
    let mut hide = false;
    for a in args {
        out.push(if hide { "<token>".into() } else { a.clone() });
        hide = a == "--token";
    }
    out.join(" ")
}

/// One line of `docker node ls --format '{{json .}}'`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeRow {
    pub hostname: String,
    /// Ready, Down, Unknown…
    pub status: String,
    /// Active, Pause, Drain.
    #[serde(default)]
    pub availability: String,
    /// Leader, Reachable, Unreachable; empty for a worker.
    #[serde(default)]
    pub manager_status: String,
}

/// The arguments of `docker node ls` as JSON lines.
pub fn node_ls() -> Vec<String> {
    ["node", "ls", "--format", "{{json .}}"]
        .map(String::from)
        .to_vec()
}

/// The rows of `docker node ls --format '{{json .}}'` (lines that do not
/// parse are left out).
pub fn parse_node_ls(out: &str) -> Vec<NodeRow> {
    out.lines()
        .filter_map(|l| serde_json::from_str(l.trim()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ls_lines_parse_and_noise_is_skipped() {
        let out = r#"{"Availability":"Active","EngineVersion":"26.1.5","Hostname":"lab","ID":"x1","ManagerStatus":"Leader","Self":true,"Status":"Ready","TLSStatus":"Ready"}
{"Availability":"Active","EngineVersion":"26.1.5","Hostname":"lab-2","ID":"x2","ManagerStatus":"","Self":false,"Status":"Down","TLSStatus":"Ready"}
WARNING: something
"#;
        let rows = parse_node_ls(out);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].manager_status, "Leader");
        assert_eq!(rows[1].hostname, "lab-2");
        assert_eq!(rows[1].status, "Down");
        assert_eq!(node_ls().join(" "), "node ls --format {{json .}}");
    }

    #[test]
    fn a_join_token_is_never_shown() {
        let a: Vec<String> = [
            "swarm",
            "join",
            "--token",
            "SWMTKN-1-secret",
            "192.168.140.1:2377",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            shown(&a),
            "docker swarm join --token <token> 192.168.140.1:2377"
        );
    }

    #[test]
    fn the_remote_command_keeps_its_words() {
        // What ssh hands the guest's shell: the format stays one word.
        let remote = crate::sys::CommandLine::new("docker", &node_ls()).to_string();
        assert_eq!(remote, "docker node ls --format '{{json .}}'");
    }
}
