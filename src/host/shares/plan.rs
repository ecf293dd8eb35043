//! What a boot shares and how: virtiofs or 9p, each share's masks, and
//! the shares left out this boot (with why).
//!
//! virtiofs needs a usable virtiofsd and user namespaces to confine it;
//! without them the folders go through 9p, which QEMU serves. A share
//! that holds something hidden needs its masks, which need a namespace
//! too: where the host refuses them, that share is left out (and said),
//! rather than shown whole.

use super::confine::{self, Refused};
use super::masks::{self, Hidden};
use super::{Mount, ShareError};
use crate::host::store::Machine;
use crate::wire::guest_config::ShareFs;
use std::fmt;
use std::path::PathBuf;

/// One share of this boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub mount: Mount,
    /// Paths inside it shown empty (relative).
    pub masks: Vec<PathBuf>,
    /// The hidden folder it is or lies in, shared because asked for.
    pub exposes: Option<PathBuf>,
}

/// Why the folders go through 9p though `auto` prefers virtiofs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FellBack {
    NoVirtiofsd,
    Unconfined(Refused),
}

/// How this boot shares the machine's folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The virtiofsd to serve the folders; None: 9p (or nothing to share).
    pub virtiofsd: Option<PathBuf>,
    /// `auto` took 9p, and why.
    pub fell_back: Option<FellBack>,
    /// Share servers run in namespaces of their own, on views.
    pub namespaces: bool,
    /// The shares, in tag order.
    pub shares: Vec<Planned>,
    /// What the user should know: shares left out, folders exposed.
    pub notes: Vec<ShareNote>,
}

/// Something about the shares worth a line of `b2d up`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareNote {
    /// The default home share could not be made (root's `/root`).
    HomeNotShared { home: PathBuf, why: String },
    /// A share left out of this boot.
    Left { path: PathBuf, why: String },
    /// A share that is (or lies in) a credential folder, as asked.
    Exposes { share: PathBuf, hidden: PathBuf },
    /// 9p instead of virtiofs.
    NineP(FellBack),
}

impl fmt::Display for ShareNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShareNote::HomeNotShared { home, why } => write!(
                f,
                "not sharing your home {}: {why}; share a folder with `b2d up --mount DIR` (or run b2d as an ordinary user, whose home is shared at the same path)",
                home.display()
            ),
            ShareNote::Left { path, why } => {
                write!(f, "not sharing {} this boot: {why}", path.display())
            }
            ShareNote::Exposes { share, hidden } => write!(
                f,
                "sharing {}, as asked: the guest can read {}, which b2d hides from shares by default",
                share.display(),
                hidden.display()
            ),
            ShareNote::NineP(FellBack::NoVirtiofsd) => f.write_str(
                "no virtiofsd found: folders are shared through 9p, several times slower on many small files (install virtiofsd: `make deps` or `cargo install virtiofsd`)",
            ),
            ShareNote::NineP(FellBack::Unconfined(why)) => write!(
                f,
                "folders are shared through 9p, not virtiofs: b2d runs virtiofsd confined in a user namespace, and {why}"
            ),
        }
    }
}

impl Plan {
    pub fn none() -> Plan {
        Plan {
            virtiofsd: None,
            fell_back: None,
            namespaces: false,
            shares: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn fs(&self) -> ShareFs {
        match self.virtiofsd {
            Some(_) => ShareFs::Virtiofs,
            None => ShareFs::NineP,
        }
    }
}

/// The plan for `mounts`: `wanted` is the machine's `--mount-type` (None:
/// auto), `found` where virtiofsd is (None: not installed), `hidden`
/// what no share shows, `userns` whether share servers can be confined.
pub fn plan(
    wanted: Option<ShareFs>,
    mounts: &[Mount],
    hidden: &[Hidden],
    found: impl FnOnce() -> Option<PathBuf>,
    userns: impl FnOnce() -> Result<(), Refused>,
) -> Result<Plan, ShareError> {
    if mounts.is_empty() {
        return Ok(Plan::none());
    }
    let userns = userns();
    let mut p = Plan::none();
    p.namespaces = userns.is_ok();
    if wanted != Some(ShareFs::NineP) {
        match (found(), &userns) {
            (Some(bin), Ok(())) => p.virtiofsd = Some(bin),
            (Some(_), Err(why)) if wanted.is_some() => {
                return Err(ShareError::Unconfined(why.clone()))
            }
            (Some(_), Err(why)) => p.fell_back = Some(FellBack::Unconfined(why.clone())),
            (None, _) if wanted.is_some() => return Err(ShareError::NoVirtiofsd),
            (None, _) => p.fell_back = Some(FellBack::NoVirtiofsd),
        }
    }
    p.notes.extend(p.fell_back.clone().map(ShareNote::NineP));
    for mount in mounts {
        let left = |why: String| ShareNote::Left {
            path: mount.path.clone(),
            why,
        };
        // Kept in config.json: the folder may have gone, or been
        // replaced by a symlink, since it was given.
        match std::fs::canonicalize(&mount.path) {
            Ok(real) if real == mount.path && real.is_dir() => {}
            Ok(real) if real != mount.path => {
                p.notes
                    .push(left(format!("it is now a symlink to {}", real.display())));
                continue;
            }
            Ok(_) => {
                p.notes.push(left("it is not a folder now".into()));
                continue;
            }
            Err(e) => {
                p.notes.push(left(e.to_string()));
                continue;
            }
        }
        if let Some(store) = masks::inside_store(&mount.path, hidden) {
            p.notes.push(left(format!(
                "it is in b2d's store {}, which no machine may see",
                store.display()
            )));
            continue;
        }
        let f = masks::for_share(&mount.path, hidden);
        if !f.masks.is_empty() {
            if let Err(why) = &userns {
                p.notes.push(left(format!(
                    "hiding {} in it needs a user namespace, and {why}: share a folder without it, e.g. a project folder",
                    f.masks[0].display()
                )));
                continue;
            }
        }
        if let Some(hidden) = &f.exposes {
            p.notes.push(ShareNote::Exposes {
                share: mount.path.clone(),
                hidden: hidden.clone(),
            });
        }
        p.shares.push(Planned {
            mount: mount.clone(),
            masks: f.masks,
            exposes: f.exposes,
        });
    }
    Ok(p)
}

/// [`plan`] for machine `m` from this host and this process's
/// environment.
pub fn plan_for(m: &Machine) -> Result<Plan, ShareError> {
    let mounts = m.config.mounts.as_deref().unwrap_or_default();
    plan(
        m.config.mount_type,
        mounts,
        &hidden_for(m),
        super::virtiofs::find,
        confine::available,
    )
}

/// What no share of `m` shows.
pub fn hidden_for(m: &Machine) -> Vec<Hidden> {
    hidden_in(&m.store())
}

/// What no share of a machine of `store` shows.
pub fn hidden_in(store: &crate::host::store::Store) -> Vec<Hidden> {
    let root = &store.root;
    let b2d_data = root.parent().unwrap_or(root);
    masks::Places::from_env(b2d_data).hidden()
}
