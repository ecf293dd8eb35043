//! `b2d cp SRC DST`: files and directories (recursively) between this
//! host and a machine, `NAME:PATH` naming the guest side, as `docker cp`
//! names a container's. It is OpenSSH's scp over the machine's pinned
//! host key and own key (the same options as `b2d ssh`): a directory
//! lands inside an existing directory, or becomes DST.

use super::{ssh, CmdError, Context, Output};
use crate::host::store::{validate_name, Store};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CpError {
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error("neither {src} nor {dst} names a machine: write the guest side as NAME:PATH (e.g. `b2d cp ./dir default:/home/docker/`), or use cp for two host paths")]
    NoMachine { src: String, dst: String },
    #[error("both {src} and {dst} are in machines: copy to this host first, then on (`b2d cp` takes one machine side)")]
    TwoMachines { src: String, dst: String },
    #[error("\"{arg}\" has no path after the machine name: give NAME:PATH (e.g. {name}:/home/docker/file), or NAME:. for its home directory")]
    NoPath { arg: String, name: String },
}

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side<'a> {
    Host(&'a str),
    Guest { machine: &'a str, path: &'a str },
}

/// `NAME:PATH` (NAME a valid machine name) is the guest side; anything
/// else, e.g. `./a:b` or `/x/y:z`, is a host path.
pub fn side(arg: &str) -> Side<'_> {
    match arg.split_once(':') {
        Some((machine, path)) if validate_name(machine).is_ok() => Side::Guest { machine, path },
        _ => Side::Host(arg),
    }
}

/// A host path as scp must see it: one with a `:` before any `/` would
/// be taken for a remote one, so it gets a `./`.
fn host_arg(p: &str) -> String {
    let colon_first = p
        .find(':')
        .is_some_and(|c| p.find('/').is_none_or(|s| c < s));
    if colon_first || p.starts_with('-') {
        Path::new(".").join(p).display().to_string()
    } else {
        p.to_string()
    }
}

/// `b2d cp SRC DST`.
#[derive(Debug, Clone, clap::Args)]
pub struct CpArgs {
    #[arg(value_name = "SRC")]
    pub src: String,
    #[arg(value_name = "DST")]
    pub dst: String,
}

/// `b2d cp SRC DST`: the `scp` that copies `src` to `dst`, for the binary
/// to run in its place.
pub fn run(store: &Store, args: CpArgs, cx: &mut Context) -> Result<Output, CpError> {
    let (src, dst) = (args.src.as_str(), args.dst.as_str());
    let (a, b) = (side(src), side(dst));
    let machine = match (&a, &b) {
        (Side::Host(_), Side::Host(_)) => {
            return Err(CpError::NoMachine {
                src: src.into(),
                dst: dst.into(),
            })
        }
        (Side::Guest { .. }, Side::Guest { .. }) => {
            return Err(CpError::TwoMachines {
                src: src.into(),
                dst: dst.into(),
            })
        }
        (Side::Guest { machine, .. }, _) | (_, Side::Guest { machine, .. }) => *machine,
    };
    for (s, arg) in [(&a, src), (&b, dst)] {
        if let Side::Guest { machine, path: "" } = s {
            return Err(CpError::NoPath {
                arg: arg.into(),
                name: machine.to_string(),
            });
        }
    }
    let m = super::running(store, machine, &cx.exe)?;
    let mut c = crate::sys::run::command("scp");
    c.args(scp_args(&m, &a, &b));
    Ok(Output::exec(c, "openssh-client"))
}

/// scp's arguments: recursive, the machine's pinned options, its port.
pub fn scp_args(m: &crate::host::store::Machine, src: &Side, dst: &Side) -> Vec<String> {
    let mut a = vec!["-r".to_string()];
    a.extend(ssh::option_args(m));
    a.extend(["-P".into(), m.config.ssh_port.to_string(), "--".into()]);
    for s in [src, dst] {
        a.push(match s {
            Side::Host(p) => host_arg(p),
            Side::Guest { path, .. } => format!("{}:{path}", ssh::LOGIN),
        });
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::cmd::context::TestTerminal;
    use crate::host::store::sample;

    #[test]
    fn the_guest_side_is_name_colon_path() {
        assert_eq!(
            side("dev:/home/docker/x"),
            Side::Guest {
                machine: "dev",
                path: "/home/docker/x"
            }
        );
        assert_eq!(side("./dev:x"), Side::Host("./dev:x"));
        assert_eq!(side("/tmp/a:b"), Side::Host("/tmp/a:b"));
        assert_eq!(side("a.b:c"), Side::Host("a.b:c"));
        assert_eq!(side("plain"), Side::Host("plain"));
        assert_eq!(host_arg("a.b:c"), "./a.b:c");
        assert_eq!(host_arg("-x"), "./-x");
        assert_eq!(host_arg("/tmp/a:b"), "/tmp/a:b");
    }

    #[test]
    fn scp_is_recursive_and_pinned_like_ssh() {
        let m = sample("/m/dev");
        let a = scp_args(
            &m,
            &Side::Host("./src"),
            &Side::Guest {
                machine: "dev",
                path: "/home/docker/",
            },
        )
        .join(" ");
        assert!(a.starts_with("-r -o StrictHostKeyChecking=yes "), "{a}");
        for want in [
            "-o UserKnownHostsFile=/m/dev/known_hosts",
            "-o HostKeyAlias=b2d-dev",
            "-i /m/dev/id_ed25519",
        ] {
            assert!(a.contains(want), "{want} missing from {a}");
        }
        assert!(
            a.ends_with("-P 40022 -- ./src docker@127.0.0.1:/home/docker/"),
            "{a}"
        );
        let back = scp_args(
            &m,
            &Side::Guest {
                machine: "dev",
                path: "/data",
            },
            &Side::Host("out"),
        );
        assert_eq!(back[back.len() - 2..], ["docker@127.0.0.1:/data", "out"]);
    }

    #[test]
    fn misuse_says_what_to_type() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::at(t.path());
        crate::host::store::saved_sample(&store);
        let e = |s: &str, d: &str| {
            let args = CpArgs {
                src: s.into(),
                dst: d.into(),
            };
            run(&store, args, &mut TestTerminal::default().context())
                .unwrap_err()
                .to_string()
        };
        assert!(e("a", "b").contains("write the guest side as NAME:PATH"));
        assert!(e("dev:/a", "dev:/b").contains("copy to this host first"));
        assert!(e("dev:", "x").starts_with("\"dev:\" has no path after the machine name"));
        assert_eq!(
            e("dev:/a", "x"),
            "machine \"dev\" is not running: start it with `b2d up dev`"
        );
        assert!(e("nope:/a", "x").contains("no machine named \"nope\""));
    }
}
