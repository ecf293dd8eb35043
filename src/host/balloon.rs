//! Giving back the memory a resume loaded. Guest RAM shared with
//! virtiofsd is a memfd, and QEMU 7.2 touches every page of it while it
//! loads a saved state, free pages included; the guest still takes those
//! pages as reported to the host, so free page reporting never returns
//! them. The host agent of a resumed machine therefore inflates the
//! balloon once over the guest's free memory (the host discards what the
//! guest hands it) and deflates it again: the machine keeps all its
//! memory, and the host gets the untouched part back.

use super::qmp::Qmp;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// The balloon's device id on the QEMU command line.
pub const ID: &str = "balloon0";
/// What the guest keeps free while the balloon is up.
const MARGIN_MIB: u64 = 256;

/// The balloon size to ask for, in bytes of memory left to the guest:
/// what it uses now plus the margin, never less than the smallest
/// machine `b2d up` makes.
pub fn target(total: u64, free: u64) -> u64 {
    let used = total.saturating_sub(free);
    (used + (MARGIN_MIB << 20)).clamp(512 << 20, total)
}

/// One command on its own connection: the monitor serves one client at
/// a time, and `b2d stop` must not wait for this.
fn call(qmp: &Path, cmd: &str, args: Option<Value>) -> Result<Value, String> {
    Qmp::connect(qmp, Duration::from_secs(10))
        .and_then(|mut q| q.execute(cmd, args))
        .map_err(|e| e.to_string())
}

fn actual(qmp: &Path) -> Result<u64, String> {
    Ok(call(qmp, "query-balloon", None)?["actual"]
        .as_u64()
        .unwrap_or(0))
}

/// Inflate over the guest's free memory and deflate again; returns MiB
/// given back (as the balloon saw it).
pub fn give_back(qmp: &Path, total: u64) -> Result<u64, String> {
    let path = format!("/machine/peripheral/{ID}");
    call(
        qmp,
        "qom-set",
        Some(json!({"path": path, "property": "guest-stats-polling-interval", "value": 2})),
    )?;
    let start = Instant::now();
    let free = loop {
        let s = call(
            qmp,
            "qom-get",
            Some(json!({"path": path, "property": "guest-stats"})),
        )?;
        let free = s["stats"]["stat-free-memory"].as_u64();
        match free {
            Some(f) if s["last-update"].as_u64().unwrap_or(0) > 0 => break f,
            _ if start.elapsed() > Duration::from_secs(30) => {
                return Err("the guest sent no memory statistics".into())
            }
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    };
    let want = target(total, free);
    if want >= total {
        return Ok(0);
    }
    call(qmp, "balloon", Some(json!({ "value": want })))?;
    let inflated = wait_inflated(qmp, want);
    // Deflate whatever happened while inflating: a balloon left up would
    // starve the guest for good.
    let deflated = deflate(qmp, total);
    let last = inflated?;
    deflated?;
    Ok(total.saturating_sub(last) >> 20)
}

/// The balloon's size once it gets to `want`, stops moving for 10 s (the
/// guest could not spare more), or 5 minutes have passed.
fn wait_inflated(qmp: &Path, want: u64) -> Result<u64, String> {
    let start = Instant::now();
    let mut last = actual(qmp)?;
    let mut moved = Instant::now();
    while last > want + (16 << 20)
        && moved.elapsed() < Duration::from_secs(10)
        && start.elapsed() < Duration::from_secs(300)
    {
        std::thread::sleep(Duration::from_millis(500));
        let now = actual(qmp)?;
        if now < last {
            moved = Instant::now();
        }
        last = now;
    }
    Ok(last)
}

/// Give the guest all its memory back, retrying a monitor that is busy
/// for up to a minute.
fn deflate(qmp: &Path, total: u64) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match call(qmp, "balloon", Some(json!({ "value": total }))) {
            Ok(_) => return Ok(()),
            Err(e) if start.elapsed() > Duration::from_secs(60) => {
                return Err(format!("the balloon could not be deflated: {e}"))
            }
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_balloon_leaves_what_the_guest_uses_and_a_margin() {
        let gib = 1u64 << 30;
        let mib = 1u64 << 20;
        assert_eq!(target(2 * gib, 1536 * mib), 768 * mib);
        assert_eq!(
            target(2 * gib, 1900 * mib),
            512 * mib,
            "never below 512 MiB"
        );
        assert_eq!(target(2 * gib, 100 * mib), 2 * gib, "nothing to give");
        assert_eq!(target(2 * gib, 3 * gib), 512 * mib);
    }
}
