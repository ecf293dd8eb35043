//! Host folders shared into the machine at the same absolute path
//! (`b2d up --mount DIR[:ro]`, repeatable; the default is the user's home,
//! writable; `--mount none` shares nothing). Each is a virtiofs export
//! (a virtiofsd run as the user, see [`virtiofs`]) or a virtio-9p
//! one (`-virtfs … security_model=none`: QEMU runs as the user), so files
//! a container writes are that user's on the host, and a line in the
//! per-boot guest config QEMU hands over through fw_cfg. virtiofs is the
//! default where a usable virtiofsd is installed: it does the small-file
//! work of builds and `npm install` several times faster than 9p (see
//! the README's figures); 9p needs nothing beside QEMU.

pub mod confine;
pub mod masks;
pub mod seccomp;
pub mod virtiofs;

use crate::host::machine::Machine;
use crate::wire::guest_config::{share_problem, GuestConfig, Share, ShareFs, FW_CFG_NAME};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub path: PathBuf,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShareError {
    #[error("--mount {arg}: {why} (use --mount DIR or --mount DIR:ro, or --mount none)")]
    Bad { arg: String, why: String },
    #[error("--mount-type {0}: unknown (use virtiofs, 9p or auto)")]
    BadType(String),
    #[error("--mount-type virtiofs: no usable virtiofsd (the Rust one, run as you) on PATH, in /usr/libexec or in $B2D_VIRTIOFSD: install it (`make deps`, or `cargo install virtiofsd`), or use --mount-type 9p")]
    NoVirtiofsd,
}

/// `--mount-type`: Ok(None) for `auto`.
pub fn parse_type(arg: &str) -> Result<Option<ShareFs>, ShareError> {
    match arg {
        "auto" => Ok(None),
        "virtiofs" => Ok(Some(ShareFs::Virtiofs)),
        "9p" => Ok(Some(ShareFs::NineP)),
        _ => Err(ShareError::BadType(arg.into())),
    }
}

/// How this boot shares the machine's folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The virtiofsd to serve the folders; None: 9p (or nothing to share).
    pub virtiofsd: Option<PathBuf>,
    /// `auto` found no virtiofsd and took 9p.
    pub fell_back: bool,
}

impl Plan {
    pub fn none() -> Plan {
        Plan {
            virtiofsd: None,
            fell_back: false,
        }
    }

    pub fn fs(&self) -> ShareFs {
        match self.virtiofsd {
            Some(_) => ShareFs::Virtiofs,
            None => ShareFs::NineP,
        }
    }
}

/// The machine's `--mount-type` (None: auto), given where virtiofsd is
/// (`found`, None: not installed).
pub fn plan(
    wanted: Option<ShareFs>,
    mounts: &[Mount],
    found: impl FnOnce() -> Option<PathBuf>,
) -> Result<Plan, ShareError> {
    if mounts.is_empty() || wanted == Some(ShareFs::NineP) {
        return Ok(Plan::none());
    }
    match (found(), wanted) {
        (Some(bin), _) => Ok(Plan {
            virtiofsd: Some(bin),
            fell_back: false,
        }),
        (None, Some(_)) => Err(ShareError::NoVirtiofsd),
        (None, None) => Ok(Plan {
            fell_back: true,
            ..Plan::none()
        }),
    }
}

/// One `--mount` value: Ok(None) for `none`.
pub fn parse(arg: &str) -> Result<Option<Mount>, ShareError> {
    if arg == "none" {
        return Ok(None);
    }
    let bad = |why: String| ShareError::Bad {
        arg: arg.to_string(),
        why,
    };
    let (dir, readonly) = match arg.rsplit_once(':') {
        Some((d, "ro")) => (d, true),
        Some((d, "rw")) => (d, false),
        _ => (arg, false),
    };
    if dir.is_empty() {
        return Err(bad("no directory given".into()));
    }
    let path = std::fs::canonicalize(dir).map_err(|e| bad(format!("{dir}: {e}")))?;
    if !path.is_dir() {
        return Err(bad(format!("{} is not a directory", path.display())));
    }
    let Some(text) = path.to_str() else {
        return Err(bad(format!("{} is not valid UTF-8", path.display())));
    };
    let probe = Share {
        tag: "b2d0".into(),
        path: text.to_string(),
        readonly,
        fs: ShareFs::NineP,
    };
    if let Some(why) = share_problem(&probe) {
        return Err(bad(why));
    }
    Ok(Some(Mount { path, readonly }))
}

/// The `--mount` values, or the default (the home directory, writable)
/// when none were given; `none` anywhere means no share at all.
pub fn from_args(args: &[String], home: Option<&Path>) -> Result<Vec<Mount>, ShareError> {
    if args.is_empty() {
        return Ok(home
            .and_then(|h| parse(&h.display().to_string()).ok().flatten())
            .into_iter()
            .collect());
    }
    let mut out = Vec::new();
    for a in args {
        match parse(a)? {
            None => return Ok(Vec::new()),
            Some(m) if !out.iter().any(|o: &Mount| o.path == m.path) => out.push(m),
            Some(_) => {}
        }
    }
    Ok(out)
}

/// The mount tag of share `i`.
pub fn tag(i: usize) -> String {
    format!("b2d{i}")
}

/// The per-boot config the guest reads from fw_cfg.
pub fn guest_config(mounts: &[Mount], fs: ShareFs) -> GuestConfig {
    GuestConfig {
        shares: mounts
            .iter()
            .enumerate()
            .map(|(i, m)| Share {
                tag: tag(i),
                path: m.path.display().to_string(),
                readonly: m.readonly,
                fs,
            })
            .collect(),
        engine: None,
        network: None,
    }
}

/// QEMU arguments for machine `m`: one export per mount (virtiofs
/// devices, or 9p) and the fw_cfg item naming its written
/// [`guest_config`].
/// `devices: false` leaves the virtiofs devices out (see
/// [`virtiofs::qemu_args`]).
pub fn qemu_args(m: &Machine, fs: ShareFs, devices: bool) -> Vec<String> {
    let esc = crate::host::vmspec::opt_path;
    let mounts = m.config.mounts.as_deref().unwrap_or_default();
    let mut a = Vec::new();
    if fs == ShareFs::Virtiofs {
        let tags: Vec<String> = (0..mounts.len()).map(tag).collect();
        a = virtiofs::qemu_args(m, &tags, devices);
    }
    for (i, m) in mounts.iter().enumerate().filter(|_| fs == ShareFs::NineP) {
        let ro = if m.readonly { ",readonly=on" } else { "" };
        a.push("-virtfs".into());
        a.push(format!(
            "local,path={},mount_tag={},security_model=none,id={}{ro}",
            esc(&m.path),
            tag(i),
            tag(i)
        ));
    }
    a.push("-fw_cfg".into());
    a.push(format!(
        "name={FW_CFG_NAME},file={}",
        esc(&m.guest_config())
    ));
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_args_parse_with_clear_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().canonicalize().unwrap();
        let s = p.display().to_string();
        assert_eq!(
            parse(&s).unwrap(),
            Some(Mount {
                path: p.clone(),
                readonly: false
            })
        );
        assert!(parse(&format!("{s}:ro")).unwrap().unwrap().readonly);
        assert_eq!(parse("none").unwrap(), None);
        let e = parse("/nonexistent/dir").unwrap_err().to_string();
        assert!(
            e.starts_with("--mount /nonexistent/dir: /nonexistent/dir: No such file"),
            "{e}"
        );
        assert!(e.ends_with("or --mount none)"), "{e}");
        let e = parse("/etc").unwrap_err().to_string();
        assert!(e.contains("inside the guest's system directories"), "{e}");
        let f = d.path().join("file");
        std::fs::write(&f, "x").unwrap();
        assert!(parse(f.to_str().unwrap())
            .unwrap_err()
            .to_string()
            .contains("is not a directory"));
    }

    #[test]
    fn home_by_default_none_for_nothing_and_args_for_qemu() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().canonicalize().unwrap();
        let got = from_args(&[], Some(&home)).unwrap();
        assert_eq!(got.len(), 1);
        assert!(!got[0].readonly);
        assert!(from_args(&["none".into()], Some(&home)).unwrap().is_empty());
        let ro = format!("{}:ro", home.display());
        let two = from_args(&[ro.clone(), ro], None).unwrap();
        assert_eq!(two.len(), 1, "the same directory once");
        let mut m = crate::host::machine::sample("/m/a,b");
        m.config.mounts = Some(two.clone());
        let args = qemu_args(&m, ShareFs::NineP, true);
        assert_eq!(args[0], "-virtfs");
        assert_eq!(
            args[1],
            format!(
                "local,path={},mount_tag=b2d0,security_model=none,id=b2d0,readonly=on",
                home.display()
            )
        );
        assert_eq!(
            args[2..],
            [
                "-fw_cfg",
                "name=opt/org.b2d/config,file=/m/a,,b/guest-config.json"
            ]
        );
        let c = guest_config(&two, ShareFs::Virtiofs);
        assert_eq!(c.shares[0].path, home.display().to_string());
        assert!(c.shares[0].readonly);
        assert_eq!(c.shares[0].fs, ShareFs::Virtiofs);
        let v = qemu_args(&m, ShareFs::Virtiofs, true);
        assert!(!v.iter().any(|a| a == "-virtfs"), "{v:?}");
        assert!(
            v.contains(&"vhost-user-fs-pci,chardev=vfs0,tag=b2d0,id=vfsdev0,addr=0x10".to_string()),
            "{v:?}"
        );
        assert_eq!(
            v[v.len() - 2..],
            [
                "-fw_cfg",
                "name=opt/org.b2d/config,file=/m/a,,b/guest-config.json"
            ]
        );
    }

    #[test]
    fn virtiofs_when_installed_9p_otherwise_and_an_error_when_demanded() {
        let one = vec![Mount {
            path: "/home/a".into(),
            readonly: false,
        }];
        let bin = || Some(PathBuf::from("/usr/libexec/virtiofsd"));
        let auto = plan(None, &one, bin).unwrap();
        assert_eq!(auto.fs(), ShareFs::Virtiofs);
        assert_eq!(auto.virtiofsd, bin());
        let fallback = plan(None, &one, || None).unwrap();
        assert_eq!((fallback.fs(), fallback.fell_back), (ShareFs::NineP, true));
        assert_eq!(
            plan(Some(ShareFs::Virtiofs), &one, || None),
            Err(ShareError::NoVirtiofsd)
        );
        assert_eq!(plan(Some(ShareFs::NineP), &one, bin).unwrap(), Plan::none());
        assert_eq!(
            plan(None, &[], || panic!("not asked")).unwrap(),
            Plan::none()
        );
        assert_eq!(parse_type("auto"), Ok(None));
        assert_eq!(parse_type("9p"), Ok(Some(ShareFs::NineP)));
        assert!(parse_type("nfs")
            .unwrap_err()
            .to_string()
            .contains("--mount-type nfs"));
    }
}
