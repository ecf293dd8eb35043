//! Hostname (boot step 5): `b2d.hostname=` on the kernel command line wins
//! (an explicit per-boot override), then `.b2d/hostname` from userdata, then
//! `b2d`. Written to /etc/hostname and /etc/hosts and set in the kernel.

use crate::errors::{PathError, WithPath};
use crate::sys::Sys;
use std::path::Path;

pub const DEFAULT_HOSTNAME: &str = "b2d";

#[derive(Debug, thiserror::Error)]
pub enum HostnameError {
    #[error("hostname: {0}")]
    Write(#[from] PathError),
    #[error("hostname: cannot set {name}: {source}")]
    Set {
        name: String,
        source: std::io::Error,
    },
}

/// RFC 1123 host name: labels of [A-Za-z0-9-], 1–63 long, not starting or
/// ending with '-', 253 bytes at most.
pub fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Choose the hostname; invalid candidates are logged and skipped.
pub fn choose(cmdline: Option<&str>, userdata_file: &Path) -> String {
    let from_file = std::fs::read_to_string(userdata_file)
        .ok()
        .map(|s| s.trim().to_string());
    for (what, cand) in [
        ("b2d.hostname", cmdline.map(str::to_string)),
        ("userdata hostname", from_file),
    ] {
        match cand {
            Some(c) if valid_hostname(&c) => return c,
            Some(c) => log::warn!(
                "{what} \"{}\" is not a valid host name; ignored",
                c.escape_debug()
            ),
            None => {}
        }
    }
    DEFAULT_HOSTNAME.to_string()
}

pub fn hosts_file(name: &str) -> String {
    let short = name.split('.').next().unwrap_or(name);
    let alias = if short != name {
        format!(" {short}")
    } else {
        String::new()
    };
    format!(
        "127.0.0.1\tlocalhost\n127.0.1.1\t{name}{alias}\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
}

/// Write /etc/hostname and /etc/hosts (with the lines `peers`, the
/// machines of a private network) under `etc` and set the kernel's.
pub fn apply(sys: &dyn Sys, etc: &Path, name: &str, peers: &str) -> Result<(), HostnameError> {
    std::fs::create_dir_all(etc).with_path("cannot create", etc)?;
    for (file, text) in [
        ("hostname", format!("{name}\n")),
        ("hosts", hosts_file(name) + peers),
    ] {
        let path = etc.join(file);
        std::fs::write(&path, text).with_path("cannot write", &path)?;
    }
    sys.sethostname(name).map_err(|source| HostnameError::Set {
        name: name.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    #[test]
    fn validation() {
        assert!(valid_hostname("b2d"));
        assert!(valid_hostname("dev-1.example.org"));
        assert!(!valid_hostname("-x"));
        assert!(!valid_hostname("a b"));
        assert!(!valid_hostname("a..b"));
        assert!(!valid_hostname(&"x".repeat(64)));
        assert!(!valid_hostname(""));
    }

    #[test]
    fn precedence() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("hostname");
        assert_eq!(choose(None, &f), "b2d");
        std::fs::write(&f, "fromdisk\n").unwrap();
        assert_eq!(choose(None, &f), "fromdisk");
        assert_eq!(choose(Some("cmd"), &f), "cmd");
        assert_eq!(choose(Some("bad name"), &f), "fromdisk");
        std::fs::write(&f, "bad_name\n").unwrap();
        assert_eq!(choose(None, &f), "b2d");
    }

    #[test]
    fn apply_writes_files_and_sets_kernel_name() {
        let d = tempfile::tempdir().unwrap();
        let sys = FakeSys::new();
        apply(&sys, &d.path().join("etc"), "box.lan", "10.1.1.2\tpeer\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("etc/hostname")).unwrap(),
            "box.lan\n"
        );
        let hosts = std::fs::read_to_string(d.path().join("etc/hosts")).unwrap();
        assert!(hosts.contains("127.0.1.1\tbox.lan box\n"), "{hosts}");
        assert!(hosts.ends_with("\n10.1.1.2\tpeer\n"), "{hosts}");
        assert_eq!(sys.calls(), vec!["sethostname box.lan"]);
    }
}
