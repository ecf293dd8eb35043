//! What no share shows the guest: b2d's own files (the machine store, with
//! every machine's keys, CA and saved RAM, and its runtime folder) and the
//! user's credential folders. A share that holds one of them shows it as
//! an empty, read-only folder (or file): the guest is treated as hostile,
//! and root in it (a container escape) must gain nothing beyond the
//! folders it was given. The masks are mounts in a namespace of the share
//! server's own ([`super::confine`]), so they hold whatever the guest sends.
//!
//! Sharing one of the credential folders itself (`--mount ~/.ssh`) is
//! the user's explicit choice: it is shared, with a line saying so. The
//! store is never shared: [`inside_store`] refuses it.

use std::path::{Path, PathBuf};

/// Credential folders (and files) under the home, hidden in every share
/// that holds them. `$DOCKER_CONFIG` is hidden too, wherever it is.
pub const CREDENTIALS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".docker",
    ".kube",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".config/gh",
    ".password-store",
    ".netrc",
    ".git-credentials",
];

/// Why a path is hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// b2d's machine store or runtime folder.
    B2d,
    /// One of the user's credential folders.
    Credentials,
}

/// A hidden path, as it really is on the host (symlinks resolved: a
/// `~/.ssh` that links into a dotfiles folder hides that folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hidden {
    pub path: PathBuf,
    pub why: Why,
}

/// Where the hidden paths are, from the environment of `b2d up`.
#[derive(Debug, Clone, Default)]
pub struct Places {
    pub home: Option<PathBuf>,
    /// b2d's data folder (`$XDG_DATA_HOME/b2d`: the machine store).
    pub b2d_data: PathBuf,
    /// b2d's runtime folder (`$XDG_RUNTIME_DIR/b2d`), if any.
    pub b2d_runtime: Option<PathBuf>,
    /// `$DOCKER_CONFIG`, if set.
    pub docker_config: Option<PathBuf>,
}

impl Places {
    /// From this process's environment, for the store under `b2d_data`.
    pub fn from_env(b2d_data: &Path) -> Places {
        let var = |k: &str| {
            std::env::var_os(k)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        Places {
            home: var("HOME"),
            b2d_data: b2d_data.to_path_buf(),
            b2d_runtime: var("XDG_RUNTIME_DIR").map(|r| r.join("b2d")),
            docker_config: var("DOCKER_CONFIG"),
        }
    }

    /// Every hidden path that exists now, resolved. One that appears
    /// later is hidden from the next boot on.
    pub fn hidden(&self) -> Vec<Hidden> {
        let b2d = [Some(&self.b2d_data), self.b2d_runtime.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| (p.clone(), Why::B2d));
        let home = self.home.iter().flat_map(|h| {
            CREDENTIALS
                .iter()
                .map(move |c| (h.join(c), Why::Credentials))
        });
        let docker = self
            .docker_config
            .iter()
            .map(|p| (p.clone(), Why::Credentials));
        let mut out: Vec<Hidden> = Vec::new();
        for (p, why) in b2d.chain(home).chain(docker) {
            let Ok(path) = std::fs::canonicalize(&p) else {
                continue;
            };
            if !out.iter().any(|h| h.path == path) {
                out.push(Hidden { path, why });
            }
        }
        out
    }
}

/// What hiding means for one shared folder `share` (canonical).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForShare {
    /// Hidden paths inside the share, relative to it: each is masked.
    pub masks: Vec<PathBuf>,
    /// The hidden credential folder the share is, or lies in: shared
    /// because the user asked for it.
    pub exposes: Option<PathBuf>,
}

/// The masks of `share` among `hidden`.
pub fn for_share(share: &Path, hidden: &[Hidden]) -> ForShare {
    let mut f = ForShare::default();
    for h in hidden {
        if let Ok(rel) = h.path.strip_prefix(share) {
            if rel.as_os_str().is_empty() {
                f.exposes = Some(h.path.clone());
            } else {
                f.masks.push(rel.to_path_buf());
            }
        } else if share.starts_with(&h.path) {
            f.exposes = Some(h.path.clone());
        }
    }
    // A mask inside another is covered by it already.
    f.masks.sort();
    let mut kept: Vec<PathBuf> = Vec::new();
    for m in f.masks {
        if !kept.iter().any(|k| m.starts_with(k)) {
            kept.push(m);
        }
    }
    f.masks = kept;
    f
}

/// Whether `share` (canonical) is b2d's own data or runtime folder or
/// lies in one: never shared, whatever is asked.
pub fn inside_store(share: &Path, hidden: &[Hidden]) -> Option<PathBuf> {
    hidden
        .iter()
        .filter(|h| h.why == Why::B2d)
        .find(|h| share.starts_with(&h.path))
        .map(|h| h.path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(t: &Path) -> Places {
        Places {
            home: Some(t.join("home")),
            b2d_data: t.join("home/.local/share/b2d"),
            b2d_runtime: Some(t.join("run/b2d")),
            docker_config: Some(t.join("dockercfg")),
        }
    }

    #[test]
    fn the_store_and_the_credential_folders_that_exist_are_hidden_resolved() {
        let t = tempfile::tempdir().unwrap();
        let t = t.path().canonicalize().unwrap();
        for d in [
            "home/.local/share/b2d",
            "home/.aws",
            "dotfiles/ssh",
            "dockercfg",
        ] {
            std::fs::create_dir_all(t.join(d)).unwrap();
        }
        std::fs::write(t.join("home/.netrc"), "machine x").unwrap();
        std::os::unix::fs::symlink(t.join("dotfiles/ssh"), t.join("home/.ssh")).unwrap();
        let hidden = places(&t).hidden();
        let paths: Vec<&Path> = hidden.iter().map(|h| h.path.as_path()).collect();
        assert_eq!(
            paths,
            [
                t.join("home/.local/share/b2d"),
                t.join("dotfiles/ssh"),
                t.join("home/.aws"),
                t.join("home/.netrc"),
                t.join("dockercfg"),
            ]
        );
        assert_eq!(hidden[0].why, Why::B2d);
        assert_eq!(hidden[1].why, Why::Credentials);
    }

    #[test]
    fn a_share_masks_what_it_holds_and_exposes_what_it_is() {
        let hidden = vec![
            Hidden {
                path: "/h/.local/share/b2d".into(),
                why: Why::B2d,
            },
            Hidden {
                path: "/h/.ssh".into(),
                why: Why::Credentials,
            },
            Hidden {
                path: "/h/.ssh/inner".into(),
                why: Why::Credentials,
            },
        ];
        let home = for_share(Path::new("/h"), &hidden);
        assert_eq!(
            home.masks,
            [PathBuf::from(".local/share/b2d"), PathBuf::from(".ssh")]
        );
        assert_eq!(home.exposes, None);
        let ssh = for_share(Path::new("/h/.ssh"), &hidden);
        assert_eq!(ssh.exposes, Some(PathBuf::from("/h/.ssh")));
        assert_eq!(ssh.masks, [PathBuf::from("inner")]);
        let keys = for_share(Path::new("/h/.ssh/keys"), &hidden);
        assert_eq!(keys.exposes, Some(PathBuf::from("/h/.ssh")));
        let src = for_share(Path::new("/h/src"), &hidden);
        assert_eq!(src, ForShare::default());
        // A name that only begins like a hidden one is not in it.
        assert_eq!(
            for_share(Path::new("/h/.sshx"), &hidden),
            ForShare::default()
        );
        assert_eq!(
            inside_store(Path::new("/h/.local/share/b2d/machines"), &hidden),
            Some(PathBuf::from("/h/.local/share/b2d"))
        );
        assert_eq!(inside_store(Path::new("/h/.ssh"), &hidden), None);
        assert_eq!(inside_store(Path::new("/h"), &hidden), None);
    }
}
