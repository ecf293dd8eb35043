//! `b2d ssh-config`: an OpenSSH `Host b2d-NAME` block for the machine,
//! with its key, its port and its own known_hosts checked strictly, so
//! that `ssh b2d-NAME`, scp, rsync and editors' remote-SSH reach it as
//! `b2d ssh` does. Append it to `~/.ssh/config`, or pipe it:
//! `b2d ssh-config NAME | ssh -F /dev/stdin b2d-NAME CMD` (OpenSSH closes
//! every descriptor above stderr before reading `-F`: `<(…)` fails).
//!
//! The block pins agent and X11 forwarding off as `b2d ssh` does. OpenSSH
//! keeps the first value it reads for each option, so a `Host *` above the
//! block would win: the block's first line says to put it above.

use super::{ssh, Context, Output};
use crate::host::store::{Machine, MachineError, Store, DEFAULT_NAME};

#[derive(Debug, thiserror::Error)]
pub enum SshConfigError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error("{0}: a path with a double quote or a newline cannot be written in an ssh_config file: set XDG_DATA_HOME to another directory")]
    Unquotable(String),
}

/// A value as ssh_config reads it: paths in double quotes.
fn value(v: &str) -> Result<String, SshConfigError> {
    if v.contains(['"', '\n']) {
        return Err(SshConfigError::Unquotable(v.into()));
    }
    Ok(if v.starts_with('/') {
        format!("\"{v}\"")
    } else {
        v.to_string()
    })
}

/// The comment the block starts with.
pub const PLACE_IT: &str = "# Put this block above any `Host *` in ~/.ssh/config: OpenSSH keeps the first value it reads.\n";

/// The block for machine `m` (it need not run: the port is remembered).
pub fn block(m: &Machine) -> Result<String, SshConfigError> {
    let mut out = format!(
        "{PLACE_IT}Host {}\n  HostName 127.0.0.1\n  Port {}\n  User docker\n  IdentityFile {}\n",
        m.host_key_alias(),
        m.config.ssh_port,
        value(&m.ssh_key().display().to_string())?
    );
    for (k, v) in ssh::pinned_options(m) {
        out += &format!("  {k} {}\n", value(&v)?);
    }
    Ok(out)
}

/// `b2d ssh-config [NAME]`.
#[derive(Debug, Clone, clap::Args)]
pub struct SshConfigArgs {
    #[arg(default_value = DEFAULT_NAME)]
    pub name: String,
}

/// `b2d ssh-config NAME`: the [`block`] of the machine.
pub fn run(
    store: &Store,
    args: SshConfigArgs,
    _cx: &mut Context,
) -> Result<Output, SshConfigError> {
    Ok(Output::stdout(block(&store.open(&args.name)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::store::sample;

    #[test]
    fn a_host_block_pinned_to_the_machine() {
        let m = sample("/m/my dev");
        let b = block(&m).unwrap();
        let b = b.strip_prefix(PLACE_IT).unwrap();
        assert!(b.starts_with("Host b2d-dev\n  HostName 127.0.0.1\n  Port 40022\n  User docker\n  IdentityFile \"/m/my dev/id_ed25519\"\n"), "{b}");
        for want in [
            "  StrictHostKeyChecking yes\n",
            "  UserKnownHostsFile \"/m/my dev/known_hosts\"\n",
            "  HostKeyAlias b2d-dev\n",
            "  IdentitiesOnly yes\n",
            "  GlobalKnownHostsFile \"/dev/null\"\n",
            "  ForwardAgent no\n",
            "  ForwardX11 no\n",
        ] {
            assert!(b.contains(want), "{want:?} missing from {b}");
        }
        let bad = sample("/m/a\"b");
        assert!(block(&bad)
            .unwrap_err()
            .to_string()
            .contains("cannot be written in an ssh_config file"));
    }
}
