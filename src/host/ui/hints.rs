//! The commands `b2d` tells the user to type next, spelled so they work
//! as printed: `b2d` when that is on PATH, else the binary's full path;
//! the machine name only when it is not the default.

use crate::host::store::{Machine, DEFAULT_NAME};
use crate::wire::ready::Ready;
use std::path::Path;

/// How to invoke this binary from the user's shell.
pub fn command_name() -> String {
    let exe = std::env::current_exe().ok();
    on_path("b2d", exe.as_deref())
        .unwrap_or_else(|| exe.map(|e| e.display().to_string()).unwrap_or("b2d".into()))
}

/// `name` if the first `name` on PATH is the binary `exe` itself.
fn on_path(name: &str, exe: Option<&Path>) -> Option<String> {
    let exe = exe?.canonicalize().ok()?;
    let first = crate::util::which(Path::new(name))?;
    (first.canonicalize().ok()? == exe).then(|| name.to_string())
}

/// `VERB` or `VERB NAME`.
pub fn verb(exe: &str, verb: &str, machine: &str) -> String {
    if machine == DEFAULT_NAME {
        format!("{exe} {verb}")
    } else {
        format!("{exe} {verb} {machine}")
    }
}

/// What `b2d up` prints once the machine is ready.
pub fn connected(m: &Machine, r: &Ready, exe: &str) -> String {
    let data = match &r.data {
        Some(d) => format!(
            "{d} on the {} data disk (images and volumes persist)",
            crate::disk::size::gib(m.config.disk_size)
        ),
        None => "NONE: running from RAM, data is lost at stop (see `b2d logs`)".into(),
    };
    format!(
        "Machine \"{name}\" is running.\n\
         \x20 Docker API  tcp://127.0.0.1:{dport} (TLS, client certificates in {certs})\n\
         \x20 SSH         127.0.0.1:{sport}, user docker\n\
         \x20 Data        {data}\n\
         \n\
         Point the docker CLI at it:\n\
         \x20   eval \"$({env})\"\n\
         \x20   docker info\n\
         Log in:\n\
         \x20   {ssh}\n\
         Stop it:\n\
         \x20   {stop}\n",
        name = m.name,
        dport = m.config.docker_port,
        certs = m.cert_dir().display(),
        sport = m.config.ssh_port,
        env = verb(exe, "env", &m.name),
        ssh = verb(exe, "ssh", &m.name),
        stop = verb(exe, "stop", &m.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::store::sample;

    #[test]
    fn default_machine_needs_no_name() {
        assert_eq!(verb("b2d", "env", "default"), "b2d env");
        assert_eq!(verb("/x/b2d", "ssh", "dev"), "/x/b2d ssh dev");
    }

    #[test]
    fn a_binary_not_on_path_is_named_by_its_path() {
        let t = tempfile::tempdir().unwrap();
        let exe = t.path().join("b2d");
        std::fs::write(&exe, b"").unwrap();
        assert_eq!(on_path("b2d-surely-not-on-path", Some(&exe)), None);
    }

    #[test]
    fn the_connect_text_gives_the_next_commands() {
        let m = sample("/m/dev");
        let r = Ready {
            ms: 1,
            ip: vec!["10.0.2.15".into()],
            data: Some("/mnt/sda1".into()),
            ssh: true,
            docker: true,
            phases: Default::default(),
        };
        let t = connected(&m, &r, "b2d");
        assert!(t.contains("eval \"$(b2d env dev)\""), "{t}");
        assert!(t.contains("tcp://127.0.0.1:40376"), "{t}");
        assert!(t.contains("/mnt/sda1 on the 20 GiB data disk"), "{t}");
        assert!(t.contains("b2d ssh dev"), "{t}");
    }
}
