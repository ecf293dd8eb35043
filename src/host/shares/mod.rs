//! Host folders shared into the machine at the same absolute path
//! (`b2d up --mount DIR[:ro]`, repeatable; the default is the user's home,
//! writable; `--mount none` shares nothing). Each is a virtiofs export
//! (a virtiofsd run as the user, see [`virtiofs`]) or a virtio-9p one
//! (`-virtfs … security_model=none`: QEMU runs as the user), so files a
//! container writes are that user's on the host, and a line in the
//! per-boot guest config QEMU hands over through fw_cfg. virtiofs is the
//! default where a usable virtiofsd is installed: it does the small-file
//! work of builds and `npm install` several times faster than 9p (see
//! the README's figures); 9p needs nothing beside QEMU.
//!
//! The guest is not trusted: no share shows b2d's store or the user's
//! credential folders ([`masks`]), and every share server runs confined
//! ([`confine`], [`seccomp`]). [`plan`] decides, at each boot, what is
//! shared and how.

pub mod confine;
pub mod masks;
pub mod plan;
pub mod seccomp;
pub mod virtiofs;

pub use plan::{plan, plan_for, FellBack, Plan, Planned, ShareNote};

pub use crate::host::store::config::Mount;
use crate::host::store::Machine;
use crate::wire::guest_config::{share_problem, GuestConfig, Share, ShareFs, FW_CFG_NAME};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShareError {
    #[error("--mount {arg}: {why} (use --mount DIR or --mount DIR:ro, or --mount none)")]
    Bad { arg: String, why: String },
    #[error("--mount {arg}: {path} holds b2d's machines (their keys and saved memory), which no machine may see: share another folder")]
    Store { arg: String, path: PathBuf },
    #[error("--mount-type {0}: unknown (use virtiofs, 9p or auto)")]
    BadType(String),
    #[error("--mount-type virtiofs: no usable virtiofsd (the Rust one, run as you) on PATH, in /usr/libexec or in $B2D_VIRTIOFSD: install it (`make deps`, or `cargo install virtiofsd`), or use --mount-type 9p")]
    NoVirtiofsd,
    #[error("--mount-type virtiofs: b2d runs virtiofsd confined in a user namespace, and {0}: use --mount-type 9p or auto")]
    Unconfined(confine::Refused),
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

/// One `--mount` value: Ok(None) for `none`. `hidden`: what no share
/// shows ([`masks::Places::hidden`]); a folder in b2d's store is refused.
pub fn parse(arg: &str, hidden: &[masks::Hidden]) -> Result<Option<Mount>, ShareError> {
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
    if let Some(store) = masks::inside_store(&path, hidden) {
        return Err(ShareError::Store {
            arg: arg.to_string(),
            path: store,
        });
    }
    Ok(Some(Mount { path, readonly }))
}

/// The folders a machine shares, and what to tell the user about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chosen {
    pub mounts: Vec<Mount>,
    pub notes: Vec<ShareNote>,
}

/// The `--mount` values, or the default (the home directory, writable)
/// when none were given; `none` anywhere means no share at all. A home
/// that cannot be shared (root's `/root` is the guest's own) is said in
/// a note, not an error.
pub fn from_args(
    args: &[String],
    home: Option<&Path>,
    hidden: &[masks::Hidden],
) -> Result<Chosen, ShareError> {
    if args.is_empty() {
        let Some(home) = home else {
            return Ok(Chosen::default());
        };
        return Ok(match parse(&home.display().to_string(), hidden) {
            Ok(m) => Chosen {
                mounts: m.into_iter().collect(),
                notes: Vec::new(),
            },
            Err(e) => Chosen {
                mounts: Vec::new(),
                notes: vec![ShareNote::HomeNotShared {
                    home: home.to_path_buf(),
                    why: match e {
                        ShareError::Bad { why, .. } => why,
                        other => other.to_string(),
                    },
                }],
            },
        });
    }
    let mut out = Vec::new();
    for a in args {
        match parse(a, hidden)? {
            None => return Ok(Chosen::default()),
            Some(m) if !out.iter().any(|o: &Mount| o.path == m.path) => out.push(m),
            Some(_) => {}
        }
    }
    Ok(Chosen {
        mounts: out,
        notes: Vec::new(),
    })
}

/// The mount tag of share `i`.
pub fn tag(i: usize) -> String {
    format!("b2d{i}")
}

/// The per-boot config the guest reads from fw_cfg.
pub fn guest_config(plan: &Plan) -> GuestConfig {
    GuestConfig {
        shares: plan
            .shares
            .iter()
            .enumerate()
            .map(|(i, s)| Share {
                tag: tag(i),
                path: s.mount.path.display().to_string(),
                readonly: s.mount.readonly,
                fs: plan.fs(),
            })
            .collect(),
        engine: None,
        network: None,
    }
}

/// The views of `plan`'s shares, their folders made.
pub fn views(m: &Machine, plan: &Plan) -> std::io::Result<Vec<confine::View>> {
    std::fs::create_dir_all(m.hidden_dir())?;
    plan.shares
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let at = m.share_view(i);
            std::fs::create_dir_all(&at)?;
            Ok(confine::View {
                source: s.mount.path.clone(),
                at,
                masks: s.masks.clone(),
            })
        })
        .collect()
}

/// QEMU arguments for machine `m`: one export per planned share
/// (virtiofs devices, or 9p) and the fw_cfg item naming its written
/// [`guest_config`]. A confined 9p export serves the share's view.
/// `devices: false` leaves the virtiofs devices out (see
/// [`virtiofs::qemu_args`]).
pub fn qemu_args(m: &Machine, plan: &Plan, devices: bool) -> Vec<String> {
    let esc = crate::util::qemu_opt_path;
    let mut a = Vec::new();
    match plan.fs() {
        ShareFs::Virtiofs => {
            let tags: Vec<String> = (0..plan.shares.len()).map(tag).collect();
            a = virtiofs::qemu_args(m, &tags, devices);
        }
        ShareFs::NineP => {
            for (i, s) in plan.shares.iter().enumerate() {
                let ro = if s.mount.readonly { ",readonly=on" } else { "" };
                let (path, multidevs) = if plan.namespaces {
                    // The masks are other filesystems: 9p must keep their
                    // inode numbers apart from the share's.
                    (m.share_view(i), ",multidevs=remap")
                } else {
                    (s.mount.path.clone(), "")
                };
                a.push("-virtfs".into());
                a.push(format!(
                    "local,path={},mount_tag={},security_model=none,id={}{ro}{multidevs}",
                    esc(&path),
                    tag(i),
                    tag(i)
                ));
            }
        }
    }
    a.push("-fw_cfg".into());
    a.push(format!(
        "name={FW_CFG_NAME},file={}",
        esc(&m.guest_config())
    ));
    a
}

#[cfg(test)]
mod tests;
