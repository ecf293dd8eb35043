//! Which QEMU runs machines: `$B2D_QEMU` (a name looked up on PATH, or a
//! path), else `qemu-system-x86_64` on PATH. Found here only.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("{0} not found: install QEMU with `sudo apt-get install qemu-system-x86 qemu-utils` (or set B2D_QEMU)")]
pub struct Missing(pub String);

/// The QEMU to run, as named (not looked up).
pub fn name() -> PathBuf {
    std::env::var_os("B2D_QEMU")
        .map(PathBuf::from)
        .unwrap_or_else(|| "qemu-system-x86_64".into())
}

/// The QEMU binary, or what to install.
pub fn find() -> Result<PathBuf, Missing> {
    let b = name();
    if b.components().count() > 1 {
        return if b.is_file() {
            Ok(b)
        } else {
            Err(Missing(b.display().to_string()))
        };
    }
    crate::util::which(&b).ok_or_else(|| Missing(b.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_qemu_says_what_to_install() {
        let e = Missing("qemu-system-x86_64".into()).to_string();
        assert!(
            e.contains("apt-get install qemu-system-x86 qemu-utils"),
            "{e}"
        );
    }
}
