//! Which ISO a machine boots: `--iso`, else `B2D_ISO`, else the one
//! `make iso` built: in a directory above the `b2d` binary, in the source
//! tree the binary was built from (wherever its target directory is, e.g.
//! with `CARGO_TARGET_DIR` set), or in the current directory. A file that is not an ISO 9660 image is
//! refused by name before anything is written.

use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("{path}: no such ISO ({from}): build one with `make iso` in the b2d source tree, or pass --iso PATH")]
    Missing { path: PathBuf, from: &'static str },
    #[error("no b2d ISO found (looked for out/b2d.iso above the b2d binary, in {tree} and in the current directory): build one with `make iso` in the b2d source tree, or pass --iso PATH")]
    NotFound { tree: PathBuf },
    #[error("{path}: not an ISO 9660 image (no CD001 volume descriptor at byte 32769)")]
    NotIso { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

const BUILT: &str = "out/b2d.iso";
/// The source tree this binary was built from.
const SOURCE_TREE: &str = env!("CARGO_MANIFEST_DIR");

/// The ISO to create a machine with.
pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf, IsoError> {
    let env = std::env::var_os("B2D_ISO").filter(|v| !v.is_empty());
    let (path, from) = match (explicit, env) {
        (Some(p), _) => (p.to_path_buf(), "--iso"),
        (None, Some(p)) => (PathBuf::from(p), "B2D_ISO"),
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
    Ok(path)
}

/// The first ISO among [`candidates`] for the running binary.
fn built() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    candidates(exe.as_deref(), Path::new(SOURCE_TREE), cwd.as_deref())
        .into_iter()
        .find(|p| p.is_file() && check(p).is_ok())
}

/// Where `make iso`'s output may be, in order: `out/b2d.iso` in a
/// directory above the binary `exe` (`target/release/b2d` of a source
/// tree), in the source tree it was built from (its target directory may
/// be anywhere), in the current directory.
fn candidates(exe: Option<&Path>, tree: &Path, cwd: Option<&Path>) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = exe
        .into_iter()
        .flat_map(|e| e.ancestors().skip(1))
        .chain([tree])
        .chain(cwd)
        .map(|d| d.join(BUILT))
        .collect();
    let mut seen = std::collections::HashSet::new();
    all.retain(|p| seen.insert(p.clone()));
    all
}

/// Refuse a file without an ISO 9660 primary volume descriptor (read as
/// the guest's initramfs reads its boot medium).
pub fn check(path: &Path) -> Result<(), IsoError> {
    let mut f = std::fs::File::open(path).map_err(|source| IsoError::Io {
        path: path.to_path_buf(),
        source,
    })?;
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
        assert_eq!(resolve(Some(&iso)).unwrap(), iso);
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
    fn a_binary_in_another_target_dir_still_finds_its_source_tree_iso() {
        let c = candidates(
            Some(Path::new("/tmp/elsewhere/release/b2d")),
            Path::new("/src/b2d"),
            Some(Path::new("/home/u")),
        );
        let c: Vec<_> = c.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(
            c,
            [
                "/tmp/elsewhere/release/out/b2d.iso",
                "/tmp/elsewhere/out/b2d.iso",
                "/tmp/out/b2d.iso",
                "/out/b2d.iso",
                "/src/b2d/out/b2d.iso",
                "/home/u/out/b2d.iso",
            ]
        );
        // In the tree's own target/, the tree comes first as before.
        let c = candidates(
            Some(Path::new("/src/b2d/target/release/b2d")),
            Path::new("/src/b2d"),
            None,
        );
        assert_eq!(c[2], Path::new("/src/b2d/out/b2d.iso"));
        assert_eq!(
            c.iter().filter(|p| p.starts_with("/src/b2d/out")).count(),
            1
        );
        assert!(Path::new(SOURCE_TREE).join("Cargo.toml").is_file());
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
