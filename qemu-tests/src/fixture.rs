//! Test inputs: the ISO under test, data disks made by the real `b2d`
//! binary, and helpers to look at a disk image from the host. Keys,
//! hashes, ports and running programs are `test_support`'s, shared with
//! the root package's integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::run;

/// The workspace root (this crate lives in `qemu-tests/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `B2D_ISO`, else `out/b2d.iso`; a missing ISO fails the test with what to run.
pub fn iso() -> PathBuf {
    let p = std::env::var_os("B2D_ISO")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("out/b2d.iso"));
    assert!(
        p.is_file(),
        "{} is missing: run `make iso` first (make test does)",
        p.display()
    );
    p
}

/// The target directory this test binary was built into (it runs as
/// `TARGET/PROFILE/deps/NAME-HASH`), wherever `CARGO_TARGET_DIR` put it;
/// `target/` of the workspace if that cannot be told.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().ok();
    exe.as_deref()
        .and_then(Path::parent)
        .filter(|deps| deps.ends_with("deps"))
        .and_then(|deps| deps.parent()?.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace().join("target"))
}

/// The host `b2d` binary: the newer of the release and debug builds in
/// the target dir this test was built into (`cargo nextest run
/// --workspace` rebuilds debug; `make build` release), so a stale build
/// is never tested.
pub fn b2d_bin() -> PathBuf {
    let target = target_dir();
    ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("b2d"))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| {
            panic!(
                "no b2d binary under {}: run `cargo build --bin b2d`",
                target.display()
            )
        })
}

/// `b2d disk create` with the key's public half.
pub fn data_disk(
    dir: &Path,
    name: &str,
    size: &str,
    format: &str,
    key: &Path,
    extra: &[&str],
) -> PathBuf {
    let p = dir.join(name);
    let pubkey = key.with_extension("pub");
    let mut args = vec![
        "disk",
        "create",
        p.to_str().unwrap(),
        "--size",
        size,
        "--format",
        format,
        "--ssh-key",
        pubkey.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(b2d_bin().to_str().unwrap(), &args);
    p
}

/// `dumpe2fs -h` of partition 1 of a raw image, through a loop device.
pub fn ext4_header(raw: &Path) -> String {
    let dev = run("losetup", &["-fP", "--show", "-r", raw.to_str().unwrap()])
        .trim()
        .to_string();
    // Partition nodes may need a moment, or a kernel without a GPT parser.
    let part = format!("{dev}p1");
    if !Path::new(&part).exists() {
        let _ = Command::new("partx").args(["-a", &dev]).status();
    }
    let out = Command::new("dumpe2fs").args(["-h", &part]).output();
    let _ = Command::new("losetup").args(["-d", &dev]).status();
    let out = out.expect("dumpe2fs (e2fsprogs)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The agent's console lines are for people: no Rust Debug output
/// (`Some(..)`, `None`, `Struct { .. }`, escaped quotes).
pub fn assert_no_debug(serial: &str) {
    for l in b2d::wire::console::lines(serial) {
        let t = l.text;
        let debug = t.contains("Some(")
            || t.split(|c: char| !c.is_alphanumeric()).any(|w| w == "None")
            || t.contains(" { ")
            || t.contains("\\\"");
        assert!(!debug, "Debug output on the console: {t}");
    }
}
