//! The fault suite: power cuts (SIGKILL of QEMU with the machine's own
//! disk cache mode, so what the guest had not flushed is lost), service
//! crashes, a full disk, misbehaving hooks and a reboot soak, each
//! asserted from outside the guest. `make torture` runs all of it
//! (`src/bin/torture.rs`, one summary line at the end); `make test` runs
//! a sample through `tests/torture.rs`.

pub mod cuts;
pub mod image;
pub mod in_use;
pub mod services;

use crate::machines::Machine;
use std::time::Duration;

/// Longest any boot of the suite may take under TCG.
pub const BOOT_LIMIT: Duration = Duration::from_secs(400);

/// Whether the whole suite runs (`B2D_TORTURE=full`, as `make torture`
/// sets) or the sample `make test` runs.
pub fn full() -> bool {
    std::env::var("B2D_TORTURE").is_ok_and(|v| v == "full")
}

/// The busybox applets the suite's containers use.
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "yes", "head", "dd", "md5sum", "sleep", "rm", "sync", "true", "ls",
];

/// A machine of the real `b2d` up and running (no share, 4 GiB disk),
/// with the image `bb` (a static busybox) imported.
pub fn machine(name: &'static str) -> Machine {
    let m = Machine::new(name);
    let iso = crate::fixture::iso();
    let iso = iso.to_str().expect("UTF-8 ISO path");
    m.ok(
        "up",
        m.b2d(&[
            "up",
            name,
            "--iso",
            iso,
            "--mount",
            "none",
            "--disk-size",
            "4G",
            "--timeout",
            "400",
        ]),
    );
    let dir = m.dir.path().join("bb");
    std::fs::create_dir_all(&dir).expect("a directory for the image");
    let tar = test_support::busybox_image(&dir, APPLETS, &[]);
    docker(
        &m,
        &format!("docker import -c 'ENV PATH=/bin' {} bb", tar.display()),
    );
    m
}

/// A script run with the machine's docker environment; its stdout.
pub fn docker(m: &Machine, script: &str) -> String {
    m.ok(
        script,
        m.bash(&format!("eval \"$(\"$B2D\" env {})\"\n{script}", m.name)),
    )
}

/// SIGKILL the machine's QEMU: a power cut.
pub fn power_cut(m: &Machine) {
    let pid = m.status()["pid"]
        .as_u64()
        .expect("a running machine has a pid") as u32;
    b2d::host::vm::kill(pid);
    let t0 = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "QEMU {pid} survived SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `b2d up` of a stopped (or cut) machine.
pub fn up(m: &Machine) -> String {
    m.said("up", m.b2d(&["up", m.name, "--timeout", "400"]))
}
