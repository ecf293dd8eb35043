//! The share as it was served before virtiofsd was confined, for an A/B
//! in one boot: a second virtiofsd with b2d's arguments but
//! `--sandbox none`, no namespace, no masks and no setuid filter, serving
//! the same folder to the running machine as a second device (plugged in
//! through QMP), mounted in the guest at [`MOUNT`]. The bench alternates
//! its rounds between the two, so both see the same host and guest.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the guest mounts the plain share.
pub const MOUNT: &str = "/mnt/plain";

pub struct Plain {
    child: Child,
}

impl Plain {
    /// Unmount and unplug it (a share server killed under a mount would
    /// leave the guest waiting on it), then end it.
    pub fn detach(self, machine: &Path, guest: impl Fn(&str) -> String) {
        guest(&format!("umount {MOUNT}"));
        let mut q = qmp(machine);
        q.execute("device_del", Some(serde_json::json!({"id": "plaindev"})))
            .expect("device_del");
        let t0 = Instant::now();
        while q
            .execute(
                "qom-list",
                Some(serde_json::json!({"path": "/machine/peripheral"})),
            )
            .map(|v| v.to_string().contains("plaindev"))
            .unwrap_or(false)
        {
            assert!(t0.elapsed() < Duration::from_secs(20), "plaindev stays");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn qmp(machine: &Path) -> b2d::host::vm::qmp::Qmp {
    b2d::host::vm::qmp::Qmp::connect(&machine.join("qmp.sock"), Duration::from_secs(10))
        .expect("the machine's QMP socket")
}

impl Drop for Plain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serve `share` unconfined to the machine whose directory is
/// `machine`, mounted at [`MOUNT`] by `guest` (a shell in the guest).
pub fn attach(machine: &Path, share: &Path, guest: impl Fn(&str) -> String) -> Plain {
    use b2d::host::shares::virtiofs;
    let sock = machine.join("plain.sock");
    let _ = std::fs::remove_file(&sock);
    let (uid, gid) = (nix_ids().0, nix_ids().1);
    let mut args = virtiofs::daemon_args(share, false, &sock, uid, gid);
    let at = args
        .iter()
        .position(|a| a == "--sandbox")
        .expect("--sandbox");
    args[at + 1] = "none".into();
    let bin = virtiofs::find().expect("a usable virtiofsd");
    let child = Command::new(bin)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the plain virtiofsd");
    let t0 = Instant::now();
    while !sock.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no plain virtiofsd socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut q = qmp(machine);
    let chardev = serde_json::json!({
        "id": "plain",
        "backend": {"type": "socket", "data": {
            "addr": {"type": "unix", "data": {"path": sock.to_str().unwrap()}},
            "server": false
        }}
    });
    q.execute("chardev-add", Some(chardev))
        .expect("chardev-add");
    let dev = serde_json::json!({
        "driver": "vhost-user-fs-pci", "chardev": "plain", "tag": "plain", "id": "plaindev"
    });
    q.execute("device_add", Some(dev)).expect("device_add");
    // The guest sees the device a moment later.
    let t0 = Instant::now();
    loop {
        let said = guest(&format!(
            "mkdir -p {MOUNT}; mount -t virtiofs plain {MOUNT} 2>&1 && echo mounted || true"
        ));
        if said.contains("mounted") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "mount: {said}");
        std::thread::sleep(Duration::from_millis(500));
    }
    Plain { child }
}

fn nix_ids() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}
