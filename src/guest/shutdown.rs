//! Shutdown (boot step 9): after the supervisor stopped the services,
//! sync, unmount the data disk and persistence binds (deepest first, in
//! reverse mount order from /proc/self/mountinfo), swapoff everything in
//! /proc/swaps, sync, power off or reboot. Also the ACPI power button
//! (KEY_POWER from the "Power Button" input device) and the
//! `b2d-init poweroff|reboot` request to PID 1.
//!
//! /proc/self/mountinfo lines are split by `procfs-core`. Two things stay
//! here: undoing the kernel's octal escapes in paths (`\040` for a space),
//! which `procfs-core` leaves in, and /proc/swaps, for which it has no
//! parser (its first column is all shutdown needs).

use crate::sys::{PowerAction, Sys};
use std::path::{Path, PathBuf};

/// Directories whose mounts (and everything below them) belong to the
/// data disk.
pub const DATA_MOUNT_ROOTS: &[&str] = &[
    "/mnt",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/boot2docker",
    "/home/docker",
];

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub id: u32,
    pub parent: u32,
    pub mount_point: String,
    pub fstype: String,
    /// `none` when the kernel shows none.
    pub source: String,
}

/// Undo the kernel's octal escapes (`\040` for a space, …).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text (mount order); malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let m = procfs_core::process::MountInfo::from_line(line).ok()?;
            Some(MountInfo {
                id: u32::try_from(m.mnt_id).ok()?,
                parent: u32::try_from(m.pid).ok()?,
                mount_point: unescape(&m.mount_point.to_string_lossy()),
                fstype: m.fs_type,
                // procfs-core maps the kernel's `none` (and an empty field)
                // to no source.
                source: m
                    .mount_source
                    .map_or_else(|| "none".into(), |s| unescape(&s)),
            })
        })
        .collect()
}

fn is_under(p: &str, root: &str) -> bool {
    p == root || p.starts_with(&format!("{root}/"))
}

/// Mount points to unmount, in order: the reverse of mount order,
/// restricted to the data mount roots (as seen under `root`).
pub fn unmount_plan(mounts: &[MountInfo], root: &Path) -> Vec<PathBuf> {
    let roots: Vec<String> = DATA_MOUNT_ROOTS
        .iter()
        .map(|r| root.join(r.trim_start_matches('/')).display().to_string())
        .collect();
    mounts
        .iter()
        .rev()
        .filter(|m| roots.iter().any(|r| is_under(&m.mount_point, r)))
        .map(|m| PathBuf::from(&m.mount_point))
        .collect()
}

/// Swap devices/files from /proc/swaps text.
pub fn parse_swaps(text: &str) -> Vec<PathBuf> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(|f| PathBuf::from(unescape(f)))
        .collect()
}

/// Sync, unmount the data mounts, swapoff, sync, then end the system.
/// Every failure is logged and the sequence goes on: the power goes off
/// either way, and the disk was synced first.
pub fn finish(sys: &dyn Sys, proc_root: &Path, root: &Path, action: PowerAction) {
    log::info!("shutdown: syncing and unmounting, then {action}");
    sys.sync();
    let mountinfo = std::fs::read_to_string(proc_root.join("self/mountinfo")).unwrap_or_default();
    for m in unmount_plan(&parse_mountinfo(&mountinfo), root) {
        if let Err(e) = sys.umount(&m, false) {
            log::warn!("shutdown: umount {}: {e}; detaching instead", m.display());
            if let Err(e) = sys.umount(&m, true) {
                log::warn!("shutdown: umount -l {}: {e}", m.display());
            }
        }
    }
    let swaps = std::fs::read_to_string(proc_root.join("swaps")).unwrap_or_default();
    for s in parse_swaps(&swaps) {
        if let Err(e) = sys.swapoff(&s) {
            log::warn!("shutdown: swapoff {}: {e}", s.display());
        }
    }
    sys.sync();
    log::info!("shutdown: {action} now");
    if let Err(e) = sys.power(action) {
        log::error!("shutdown: {action} failed: {e}");
    }
}

/// EV_KEY and KEY_POWER from <linux/input-event-codes.h>.
pub const EV_KEY: u16 = 1;
pub const KEY_POWER: u16 = 116;
/// sizeof(struct input_event) on 64-bit: timeval (16) + type, code, value.
pub const INPUT_EVENT_SIZE: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEvent {
    pub kind: u16,
    pub code: u16,
    pub value: i32,
}

/// Parse whole `struct input_event` records (native endian, 64-bit).
pub fn parse_input_events(buf: &[u8]) -> Vec<InputEvent> {
    buf.chunks_exact(INPUT_EVENT_SIZE)
        .map(|c| InputEvent {
            kind: u16::from_ne_bytes([c[16], c[17]]),
            code: u16::from_ne_bytes([c[18], c[19]]),
            value: i32::from_ne_bytes([c[20], c[21], c[22], c[23]]),
        })
        .collect()
}

pub fn is_power_press(e: &InputEvent) -> bool {
    e.kind == EV_KEY && e.code == KEY_POWER && e.value == 1
}

/// `/dev/input/eventN` nodes whose device name is "Power Button".
pub fn power_buttons(sys_root: &Path, dev_root: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(sys_root.join("class/input")) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let name = std::fs::read_to_string(e.path().join("device/name")).ok()?;
            (n.starts_with("event") && name.trim() == "Power Button")
                .then(|| dev_root.join("input").join(n))
        })
        .collect();
    v.sort();
    v
}

/// Watch the power buttons in background threads; `on_press` is called on
/// each KEY_POWER press.
pub fn watch_power_buttons(devices: Vec<PathBuf>, on_press: fn()) {
    for dev in devices {
        log::info!("watching {} for the power button", dev.display());
        std::thread::spawn(move || {
            use std::io::Read;
            let mut f = match std::fs::File::open(&dev) {
                Ok(f) => f,
                Err(e) => return log::warn!("cannot open {}: {e}", dev.display()),
            };
            let mut buf = [0u8; INPUT_EVENT_SIZE * 16];
            loop {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if parse_input_events(&buf[..n]).iter().any(is_power_press) {
                            log::info!("power button pressed");
                            on_press();
                        }
                    }
                }
            }
        });
    }
}

/// `b2d-init poweroff|reboot`: ask PID 1 (SIGUSR2 powers off, SIGUSR1
/// reboots).
pub fn request_pid1(action: PowerAction) -> std::io::Result<()> {
    use nix::sys::signal::{kill, Signal};
    let sig = match action {
        PowerAction::PowerOff => Signal::SIGUSR2,
        PowerAction::Reboot => Signal::SIGUSR1,
    };
    kill(nix::unistd::Pid::from_raw(1), sig).map_err(|e| {
        std::io::Error::new(
            std::io::Error::from(e).kind(),
            format!("cannot signal PID 1 ({sig}): {e}"),
        )
    })
}

/// Ask the kernel to send SIGINT to PID 1 on ctrl-alt-del instead of
/// rebooting at once.
pub fn disable_cad() {
    if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
        log::warn!("cannot disable ctrl-alt-del reboot: {e}");
    }
}

#[cfg(test)]
#[path = "shutdown_tests.rs"]
mod tests;
