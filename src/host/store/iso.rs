//! Which ISO a machine boots: `--iso`, else `B2D_ISO`, else the one
//! `make iso` built: `out/b2d.iso` of the source tree the binary was built
//! from (wherever its target directory is, e.g. with `CARGO_TARGET_DIR`
//! set), else of the tree whose `target/` holds the binary (a tree moved
//! since). Never the current directory's: a `b2d up` run in someone
//! else's checkout would boot whatever they left there. A found ISO is
//! used only if it and its directory belong to the user or root and
//! nobody else may write them, and `up` names the file it booted. A file
//! that is not an ISO 9660 image is refused by name before anything is
//! written.

use crate::errors::{PathError, WithPath};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("{path}: no such ISO ({from}): build one with `make iso` in the b2d source tree, or pass --iso PATH")]
    Missing { path: PathBuf, from: &'static str },
    #[error("no b2d ISO found (looked for out/b2d.iso in {tree}, where this b2d was built, and in the tree whose target/ holds it): build one with `make iso` in the b2d source tree, or pass --iso PATH")]
    NotFound { tree: PathBuf },
    #[error("{path}: not an ISO 9660 image (no CD001 volume descriptor at byte 32769)")]
    NotIso { path: PathBuf },
    #[error(transparent)]
    Io(#[from] PathError),
}

const BUILT: &str = "out/b2d.iso";
/// The source tree this binary was built from.
const SOURCE_TREE: &str = env!("CARGO_MANIFEST_DIR");

/// Where the ISO a machine is created with came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--iso`.
    Flag,
    /// `$B2D_ISO`.
    Env,
    /// `out/b2d.iso` of the tree this b2d was built from.
    SourceTree,
    /// `out/b2d.iso` of the tree whose `target/` holds this b2d.
    BesideBinary,
}

/// The ISO to create a machine with, and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub path: PathBuf,
    pub origin: Origin,
}

impl Chosen {
    /// The line `up` shows for an ISO it found by itself (none for one
    /// the user named).
    pub fn note(&self) -> Option<String> {
        let whence = match self.origin {
            Origin::Flag | Origin::Env => return None,
            Origin::SourceTree => "built in the source tree of this b2d",
            Origin::BesideBinary => "built in the tree that holds this b2d",
        };
        Some(format!(
            "Booting ISO {} ({whence}; --iso PATH names another)",
            self.path.display()
        ))
    }
}

/// The ISO to create a machine with.
pub fn resolve(explicit: Option<&Path>) -> Result<Chosen, IsoError> {
    let env = std::env::var_os("B2D_ISO").filter(|v| !v.is_empty());
    let (path, origin, from) = match (explicit, env) {
        (Some(p), _) => (p.to_path_buf(), Origin::Flag, "--iso"),
        (None, Some(p)) => (PathBuf::from(p), Origin::Env, "B2D_ISO"),
        (None, None) => {
            return built().ok_or_else(|| IsoError::NotFound {
                tree: SOURCE_TREE.into(),
            })
        }
    };
    if !path.is_file() {
        return Err(IsoError::Missing { path, from });
    }
    check(&path)?;
    Ok(Chosen { path, origin })
}

/// The first usable ISO among [`candidates`] for the running binary.
fn built() -> Option<Chosen> {
    let exe = std::env::current_exe().ok();
    let uid = nix::unistd::geteuid().as_raw();
    candidates(exe.as_deref(), Path::new(SOURCE_TREE))
        .into_iter()
        .find(|c| trusted(&c.path, uid) && check(&c.path).is_ok())
}

/// Where `make iso`'s output may be, in order: `out/b2d.iso` in the
/// source tree the binary was built from (its target directory may be
/// anywhere), then in the tree whose `target/` directory holds the binary
/// `exe` (`TREE/target/release/b2d`). Never the current directory.
fn candidates(exe: Option<&Path>, tree: &Path) -> Vec<Chosen> {
    let beside = exe
        .into_iter()
        .flat_map(Path::ancestors)
        .find(|d| d.file_name().is_some_and(|n| n == "target"))
        .and_then(Path::parent);
    let mut all = vec![Chosen {
        path: tree.join(BUILT),
        origin: Origin::SourceTree,
    }];
    if let Some(b) = beside.map(|b| b.join(BUILT)).filter(|b| *b != all[0].path) {
        all.push(Chosen {
            path: b,
            origin: Origin::BesideBinary,
        });
    }
    all
}

/// Whether a found ISO can be trusted: a regular file which, like its
/// directory, belongs to `uid` or root and which nobody else may write.
fn trusted(iso: &Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ours = |m: &std::fs::Metadata| (m.uid() == uid || m.uid() == 0) && m.mode() & 0o002 == 0;
    let dir = iso.parent().map(std::fs::metadata);
    std::fs::metadata(iso).is_ok_and(|m| m.is_file() && ours(&m))
        && dir.is_some_and(|d| d.is_ok_and(|d| ours(&d)))
}

/// Refuse a file without an ISO 9660 primary volume descriptor (read as
/// the guest's initramfs reads its boot medium).
pub fn check(path: &Path) -> Result<(), IsoError> {
    let mut f = std::fs::File::open(path).with_path("open", path)?;
    match crate::disk::probe::iso9660_label(&mut f) {
        Some(_) => Ok(()),
        None => Err(IsoError::NotIso {
            path: path.to_path_buf(),
        }),
    }
}

/// Whether two files hold the same bytes (so an unchanged ISO is not
/// copied again at every `b2d up --iso`).
pub fn same_contents(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (ma, mb) = match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => (x, y),
        _ => return Ok(false),
    };
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let mut fa = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(a)?);
    let mut fb = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_iso(path: &Path) {
        let mut v = vec![0u8; 0x8800];
        v[0x8000] = 1;
        v[0x8001..0x8006].copy_from_slice(b"CD001");
        std::fs::write(path, v).unwrap();
    }

    #[test]
    fn an_iso_is_recognised_and_anything_else_named() {
        let t = tempfile::tempdir().unwrap();
        let iso = t.path().join("b2d.iso");
        fake_iso(&iso);
        check(&iso).unwrap();
        assert_eq!(
            resolve(Some(&iso)).unwrap(),
            Chosen {
                path: iso.clone(),
                origin: Origin::Flag
            }
        );
        let img = t.path().join("disk.img");
        std::fs::write(&img, vec![0u8; 1 << 16]).unwrap();
        let e = resolve(Some(&img)).unwrap_err().to_string();
        assert!(e.contains("disk.img: not an ISO 9660 image"), "{e}");
        let short = t.path().join("short");
        std::fs::write(&short, b"x").unwrap();
        assert!(matches!(check(&short), Err(IsoError::NotIso { .. })));
        let e = resolve(Some(&t.path().join("nope.iso")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.iso: no such ISO (--iso)"), "{e}");
    }

    #[test]
    fn the_source_tree_then_the_tree_holding_the_binary_never_the_current_directory() {
        let paths = |exe: &str, tree: &str| -> Vec<(String, Origin)> {
            candidates(Some(Path::new(exe)), Path::new(tree))
                .into_iter()
                .map(|c| (c.path.display().to_string(), c.origin))
                .collect()
        };
        // A binary in another target dir finds its source tree's ISO, and
        // nothing above that target dir.
        assert_eq!(
            paths("/tmp/elsewhere/release/b2d", "/src/b2d"),
            [("/src/b2d/out/b2d.iso".into(), Origin::SourceTree)]
        );
        // In the tree's own target/, the tree once.
        assert_eq!(
            paths("/src/b2d/target/release/b2d", "/src/b2d"),
            [("/src/b2d/out/b2d.iso".into(), Origin::SourceTree)]
        );
        // A tree moved since the build: the one holding the binary next.
        assert_eq!(
            paths(
                "/new/b2d/target/x86_64-unknown-linux-gnu/release/b2d",
                "/old/b2d"
            ),
            [
                ("/old/b2d/out/b2d.iso".into(), Origin::SourceTree),
                ("/new/b2d/out/b2d.iso".into(), Origin::BesideBinary)
            ]
        );
        assert!(Path::new(SOURCE_TREE).join("Cargo.toml").is_file());
    }

    #[test]
    fn a_found_iso_others_may_write_is_not_booted_and_a_used_one_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let me = nix::unistd::geteuid().as_raw();
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let iso = t.path().join(BUILT);
        fake_iso(&iso);
        let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        mode(&iso, 0o644).unwrap();
        mode(&out, 0o755).unwrap();
        assert!(trusted(&iso, me));
        assert_eq!(
            trusted(&iso, me + 1),
            me == 0,
            "another user's (root's is fine)"
        );
        mode(&iso, 0o666).unwrap();
        assert!(!trusted(&iso, me), "a file others may write");
        mode(&iso, 0o644).unwrap();
        mode(&out, 0o777).unwrap();
        assert!(!trusted(&iso, me), "in a directory others may write");
        assert!(!trusted(&t.path().join("none.iso"), me));
        let found = Chosen {
            path: iso.clone(),
            origin: Origin::BesideBinary,
        };
        let line = found.note().unwrap();
        assert_eq!(
            line,
            format!(
                "Booting ISO {} (built in the tree that holds this b2d; --iso PATH names another)",
                iso.display()
            )
        );
        crate::assert_readable(&line);
        let named = Chosen {
            path: iso,
            origin: Origin::Flag,
        };
        assert_eq!(named.note(), None);
    }

    #[test]
    fn same_contents_compares_bytes() {
        let t = tempfile::tempdir().unwrap();
        let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
        std::fs::write(&a, vec![7u8; 3 << 20]).unwrap();
        std::fs::write(&b, vec![7u8; 3 << 20]).unwrap();
        let mut other = vec![7u8; 3 << 20];
        other[(3 << 20) - 1] = 8;
        std::fs::write(&c, other).unwrap();
        assert!(same_contents(&a, &b).unwrap());
        assert!(!same_contents(&a, &c).unwrap());
        assert!(!same_contents(&a, &t.path().join("missing")).unwrap());
    }
}
