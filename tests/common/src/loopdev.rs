//! Loop devices and a scratch root, for running `b2d-init prepare-disk`
//! on real block devices (as root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A loop device with partition scanning over an image file, detached on
/// drop.
pub struct Loop {
    pub dev: String,
}

impl Loop {
    pub fn new(img: &Path) -> Loop {
        crate::need("losetup", "util-linux");
        let dev = crate::run(
            "losetup",
            &["-fP", "--show", img.to_str().expect("UTF-8 path")],
        )
        .trim()
        .to_string();
        Loop { dev }
    }

    /// The node of partition `n` (`/dev/loop3p1`).
    pub fn part(&self, n: u32) -> String {
        format!("{}p{n}", self.dev)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// A scratch directory whose `root/` is the target of `prepare-disk`;
/// everything mounted under it is unmounted on drop and between runs (a
/// power cut leaves no mounts behind).
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The root `prepare-disk` mounts under.
    pub fn target(&self) -> PathBuf {
        self.path().join("root")
    }

    /// Unmount everything under [`Scratch::target`], innermost first.
    pub fn unmount_all(&self) {
        let root = self.target();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| Path::new(m).starts_with(&root))
            .collect();
        points.reverse();
        for m in points {
            let _ = Command::new("umount").arg(m).status();
        }
    }

    /// `init prepare-disk --device dev --target <root> --json`, with
    /// `--failpoint P` when `failpoint` is given. `init` is the b2d-init
    /// binary under test.
    pub fn prepare(&self, init: &str, dev: &str, failpoint: Option<&str>) -> Output {
        let mut c = Command::new(init);
        c.args(["prepare-disk", "--device", dev, "--target"])
            .arg(self.target())
            .arg("--json");
        if let Some(p) = failpoint {
            c.args(["--failpoint", p]);
        }
        crate::output(&mut c)
    }

    /// [`Scratch::prepare`], which must succeed; its JSON outcome.
    pub fn prepare_ok(&self, init: &str, dev: &str) -> serde_json::Value {
        let out = self.prepare(init, dev, None);
        crate::assert_ok(&format!("{init} prepare-disk --device {dev}"), &out);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "prepare-disk printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.unmount_all();
    }
}
