//! Which whole disks exist: `/sys/block/*`, minus devices that are never
//! data disks (loop, ram, zram, optical, floppy, device-mapper, md, nbd).

use crate::errors::{PathError, WithPath};
use std::path::{Path, PathBuf};

const NEVER: &[&str] = &[
    "loop", "ram", "zram", "sr", "fd", "dm-", "md", "nbd", "mtdblock",
];

/// A whole disk found by the scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskDev {
    /// Kernel name, e.g. `sda`.
    pub name: String,
    /// Device node, e.g. `/dev/sda`.
    pub path: PathBuf,
    /// Size in bytes from `/sys/block/NAME/size` (512-byte sectors).
    pub size: u64,
}

/// List candidate disks, sorted by name.
pub fn scan(sys_root: &Path, dev_root: &Path) -> Result<Vec<DiskDev>, PathError> {
    let mut out = Vec::new();
    let dir = sys_root.join("block");
    for entry in std::fs::read_dir(&dir).with_path("list", &dir)? {
        let entry = entry.with_path("list", &dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if NEVER.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let sectors = std::fs::read_to_string(entry.path().join("size"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if sectors == 0 {
            continue; // empty drive or no medium
        }
        out.push(DiskDev {
            path: dev_root.join(&name),
            name,
            size: sectors * 512,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_real_disks_only() {
        let t = tempfile::tempdir().unwrap();
        for (name, sectors) in [
            ("sda", "41943040"),
            ("vdb", "2048"),
            ("loop0", "100"),
            ("sr0", "2000"),
            ("ram0", "8"),
            ("sdc", "0"),
            ("nvme0n1", "10"),
        ] {
            let d = t.path().join("block").join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("size"), format!("{sectors}\n")).unwrap();
        }
        let got = scan(t.path(), Path::new("/dev")).unwrap();
        let names: Vec<_> = got.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["nvme0n1", "sda", "vdb"]);
        assert_eq!(got[1].size, 41943040 * 512);
        assert_eq!(got[1].path, PathBuf::from("/dev/sda"));
    }

    #[test]
    fn missing_sys_is_an_error_naming_it() {
        let e = scan(Path::new("/nonexistent-sys"), Path::new("/dev")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent-sys/block"));
    }
}
