//! Power cuts during the first boot of a fresh `b2d disk create` disk:
//! QEMU is killed a moment after a given console line, then the disk is
//! booted again without a cut. The second boot must reach ready with the
//! same userdata (its key logs in), its data filesystem must be clean,
//! and a format that had committed is never done again (same UUID).

use super::{image, BOOT_LIMIT};
use crate::fixture::data_disk;
use crate::{DiskBus, Vm, VmSpec};
use std::path::Path;
use std::time::{Duration, Instant};

/// Where to cut: `delay` after the first console line containing `after`.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub after: &'static str,
    pub delay_ms: u64,
}

const fn at(after: &'static str, delay_ms: u64) -> Point {
    Point { after, delay_ms }
}

/// Every point of `make torture`, in boot order: before, during and
/// after the journal, the GPT, mkfs, the userdata, mkswap and the commit,
/// the keys and certificate, and dockerd's first start.
pub const ALL: &[Point] = &[
    at("b2d-init INFO  modules: ", 0),
    at("magic disk: will format", 0),
    at("writing the format journal", 0),
    at("writing the format journal", 30),
    at("writing GPT", 0),
    at("writing GPT", 40),
    at("making the data filesystem", 0),
    at("making the data filesystem", 100),
    at("making the data filesystem", 300),
    at("storing the userdata", 0),
    at("storing the userdata", 60),
    at("making swap", 0),
    at("making swap", 40),
    at("committing the format", 0),
    at("committing the format", 30),
    at("formatted; data on", 0),
    at("swap on /dev/sda2", 0),
    at("ssh: generated ecdsa host key", 0),
    at("service containerd: started", 0),
    at("service dockerd: started", 500),
    at("service dockerd: started", 2000),
    at("service dockerd: started", 5000),
    at("b2d-ready", 0),
    at("b2d-ready", 3000),
];

/// The sample `make test` runs: one point in each of the GPT write,
/// mkfs, the commit and dockerd's first start.
pub const SAMPLE: &[Point] = &[
    at("writing GPT", 40),
    at("making the data filesystem", 100),
    at("committing the format", 0),
    at("service dockerd: started", 2000),
];

/// The phase a cut landed in, named by the last agent line before it.
pub fn phase(console: &str) -> &'static str {
    const PHASES: &[(&str, &str)] = &[
        ("b2d-ready", "after ready"),
        ("service ", "services (dockerd's first start)"),
        ("tls: ", "keys and certificate"),
        ("ssh: ", "keys and certificate"),
        ("swap on ", "after the format"),
        ("formatted; data on", "after the format"),
        ("committing the format", "commit"),
        ("making swap", "mkswap"),
        ("storing the userdata", "userdata.tar"),
        ("making the data filesystem", "mkfs"),
        ("writing GPT", "GPT"),
        ("writing the format journal", "journal"),
    ];
    let last = console
        .lines()
        .rev()
        .find_map(|l| PHASES.iter().find(|(k, _)| l.contains(k)));
    last.map_or("before the disk", |(_, p)| p)
}

/// What one cut did.
#[derive(Debug, Clone)]
pub struct Cut {
    pub point: Point,
    pub phase: &'static str,
    /// The format had committed before the cut.
    pub committed: bool,
}

/// Kill QEMU `delay` after `needle` shows on its console (polled every
/// 5 ms); returns the console as it was at the cut.
fn cut_after(vm: &mut Vm, p: Point) -> String {
    let t0 = Instant::now();
    while !vm.serial().contains(p.after) {
        assert!(
            vm.running(),
            "QEMU exited before {:?}\n{}",
            p.after,
            vm.tail(40)
        );
        assert!(
            t0.elapsed() < BOOT_LIMIT,
            "no {:?} on the console\n{}",
            p.after,
            vm.tail(40)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(p.delay_ms));
    b2d::host::vm::kill(vm.pid());
    assert!(
        vm.wait_exit(Duration::from_secs(10)),
        "QEMU survived SIGKILL"
    );
    vm.serial()
}

/// One power cut at `p` and the boot after it, in `dir`.
pub fn first_boot(iso: &Path, dir: &Path, p: Point) -> Cut {
    let key = test_support::keygen(dir).private;
    let disk = data_disk(dir, "disk.img", "2G", "raw", &key, &[]);
    let mut spec = VmSpec::new(iso).disk(&disk, "raw", DiskBus::VirtioScsi);
    // The machine's own disk mode: writes the guest flushed reach the
    // image; what it had not flushed dies with QEMU.
    spec.durable = true;
    let mut vm = Vm::boot(&spec, dir);
    let at_cut = cut_after(&mut vm, p);
    drop(vm);
    let before = image::committed_uuid(&disk);

    let mut vm = Vm::boot(&spec, dir);
    vm.ssh_key = Some(key);
    let ready = vm.ready(BOOT_LIMIT).json;
    let ctx = || format!("cut {p:?}\n{}", vm.tail(60));
    assert_eq!(ready["ssh"], true, "{}", ctx());
    assert_eq!(ready["docker"], true, "{}", ctx());
    assert_eq!(ready["data"], "/mnt/sda1", "{}", ctx());
    // The userdata's key logs in: the same archive made it through.
    assert_eq!(vm.ssh_ok("echo in").trim(), "in");
    let second = vm.serial();
    if before.is_some() {
        assert!(
            !second.contains("will format") && !second.contains("making the data filesystem"),
            "a committed format was done again\n{}",
            ctx()
        );
    }
    let _ = vm.ssh("sudo poweroff");
    let off = vm.wait_exit(Duration::from_secs(120));
    assert!(off, "cut {p:?}: no poweroff\n{}", vm.tail(60));
    drop(vm);
    image::fsck(&disk).unwrap_or_else(|e| panic!("cut {p:?}: {e}"));
    let after = image::committed_uuid(&disk);
    assert!(after.is_some(), "cut {p:?}: no committed data filesystem");
    if before.is_some() {
        assert_eq!(
            before, after,
            "cut {p:?}: the data filesystem was made again"
        );
    }
    Cut {
        point: p,
        phase: phase(&at_cut),
        committed: before.is_some(),
    }
}

/// How many cuts landed in each phase, in first-seen order.
pub fn by_phase(cuts: &[Cut]) -> Vec<(&'static str, usize)> {
    let mut out: Vec<(&'static str, usize)> = Vec::new();
    for c in cuts {
        match out.iter_mut().find(|(p, _)| *p == c.phase) {
            Some((_, n)) => *n += 1,
            None => out.push((c.phase, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_is_named_by_the_last_agent_line_before_it() {
        let log = "[ 1ms] b2d-init INFO  modules: 3 listed\n\
                   [ 2ms] b2d-init INFO  /dev/sda: writing the format journal\n\
                   [ 3ms] b2d-init INFO  /dev/sda: writing GPT (swap …)\n";
        assert_eq!(phase(log), "GPT");
        assert_eq!(
            phase("[ 1ms] b2d-init INFO  modules: 3\n"),
            "before the disk"
        );
        let log = format!("{log}[ 9ms] b2d-init INFO  service dockerd: started, pid 9\n");
        assert_eq!(phase(&log), "services (dockerd's first start)");
        assert!(ALL.len() >= 24);
        assert!(SAMPLE.len() >= 4);
    }
}
