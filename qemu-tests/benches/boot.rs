//! `make bench-boot`: b2d's cold and warm boots against the naive floor,
//! in one run, under one accelerator, with one set of QEMU flags.
//!
//! Every case boots the project's own ISO the same way: QEMU's direct
//! kernel boot of the ISO's kernel and initramfs, the ISO as the CD-ROM,
//! the machine spec `b2d up` uses. The cases, interleaved, each RUNS times
//! (`B2D_BENCH_RUNS`, default 3):
//! (a) the floor, `b2d.floor` on the kernel command line: the initramfs
//! stage execs a shell script instead of the agent's main stage (mount
//! an ext4 disk at /var/lib/docker, load the modules, DHCP, dockerd, wait
//! for `docker version`); (b) b2d's first boot of a fresh disk from
//! `b2d disk create`; (c) a warm boot of that disk. Times are the guest's
//! own clock at its line (ms since kernel start); wall time from QEMU's
//! start is printed beside. (d) Resume: a machine made by `b2d up` is
//! suspended with `b2d suspend`, then timed from `b2d up` to the end of a
//! `docker ps` through its docker context (wall clock), with no shares
//! and with the home share over virtiofs (guest RAM is then shared
//! memory, which QEMU 7.2 touches page by page while it loads).

use qemu_tests::fixture::{data_disk, iso};
use qemu_tests::spec::DirectBoot;
use qemu_tests::vm::rss_mib;
use qemu_tests::{DiskBus, Vm, VmSpec};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CMDLINE: &str = "console=tty0 console=ttyS0,115200 quiet";
const LIMIT: Duration = Duration::from_secs(600);

/// Each case this many times (`B2D_BENCH_RUNS`, default 3).
fn runs() -> usize {
    test_support::bench_runs(3)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The ISO's kernel and initramfs, for a direct boot with our command line.
fn extract(iso: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let (k, i) = (dir.join("vmlinuz"), dir.join("initrd.img"));
    for (from, to) in [("/boot/vmlinuz", &k), ("/boot/initrd.img", &i)] {
        run(Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(iso)
            .args(["-extract", from])
            .arg(to));
    }
    (k, i)
}

struct Boot {
    /// Guest seconds since kernel start at its line.
    guest: f64,
    wall: f64,
    rss_mib: u64,
    phases: Vec<(&'static str, u64)>,
}

fn direct(spec: &VmSpec, kernel: &Path, initrd: &Path, append: &str) -> VmSpec {
    let mut spec = spec.clone();
    spec.direct = Some(DirectBoot {
        kernel: kernel.into(),
        initrd: initrd.into(),
        append: append.into(),
    });
    spec
}

fn floor(spec: &VmSpec, dir: &Path, k: &Path, i: &Path) -> Boot {
    let disk = dir.join("floor.img");
    let _ = std::fs::remove_file(&disk);
    run(Command::new("truncate").args(["-s", "4G"]).arg(&disk));
    run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&disk));
    let spec =
        direct(spec, k, i, &format!("{CMDLINE} b2d.floor")).disk(&disk, "raw", DiskBus::VirtioScsi);
    let mut vm = Vm::boot(&spec, dir);
    let line = vm.wait_for("b2d-floor-ready ", LIMIT);
    let wall = vm.started.elapsed().as_secs_f64();
    let guest = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad floor line {line:?}"));
    Boot {
        guest,
        wall,
        rss_mib: rss_mib(vm.pid()),
        phases: Vec::new(),
    }
}

/// A b2d boot of `disk`, ended by a clean poweroff (so the next boot of
/// the disk is a warm boot, not one after a power cut).
fn b2d(spec: &VmSpec, dir: &Path, disk: &Path, key: &Path, k: &Path, i: &Path) -> Boot {
    let spec = direct(spec, k, i, CMDLINE).disk(disk, "raw", DiskBus::VirtioScsi);
    let mut vm = Vm::boot(&spec, dir);
    vm.ssh_key = Some(key.to_path_buf());
    let ready = vm.ready(LIMIT);
    let r: b2d::wire::ready::Ready = serde_json::from_value(ready.json.clone()).unwrap();
    assert!(r.docker && r.ssh, "not ready: {}", ready.json);
    let rss = rss_mib(vm.pid());
    let _ = vm.ssh("sudo poweroff");
    assert!(
        vm.wait_exit(Duration::from_secs(120)),
        "no poweroff\n{}",
        vm.tail(30)
    );
    Boot {
        guest: r.ms as f64 / 1000.0,
        wall: ready.wall.as_secs_f64(),
        rss_mib: rss,
        phases: r.phases.spans().iter().map(|s| (s.name, s.ms())).collect(),
    }
}

struct Resume {
    /// `b2d up` to the end of `docker ps`.
    wall: f64,
    /// `b2d up` alone.
    up: f64,
    state_mib: u64,
    rss_mib: u64,
}

/// `runs()` suspends and resumes of one machine, made with `up_args`.
fn resumes(iso: &Path, name: &'static str, up_args: &[&str]) -> Vec<Resume> {
    let s = qemu_tests::machines::Machine::new(name);
    std::fs::create_dir_all(s.dir.home()).unwrap();
    let mut args = vec![
        "up",
        name,
        "--iso",
        iso.to_str().unwrap(),
        "--timeout",
        "600",
    ];
    args.extend(up_args);
    s.ok("up", s.b2d(&args));
    let context = format!("b2d-{name}");
    let ps = || {
        let mut c = Command::new("docker");
        c.args(["--context", &context, "ps"]);
        s.env(&mut c);
        s.ok("docker ps", c.output().unwrap());
    };
    ps();
    // As a user's machine: idle a while first (its page cache dropped).
    std::thread::sleep(Duration::from_secs(60));
    let mut out = Vec::new();
    for _ in 0..runs() {
        s.ok("suspend", s.b2d(&["suspend", name]));
        // The devices' stream and what the sparse RAM file takes on disk.
        use std::os::unix::fs::MetadataExt;
        let on_disk =
            |f: &str| std::fs::metadata(s.machine_dir().join(f)).map_or(0, |m| m.blocks() * 512);
        let state_mib = (on_disk("suspend.state") + on_disk("suspend.ram")) >> 20;
        let t = Instant::now();
        let said = s.said("up", s.b2d(&["up", name]));
        let up = t.elapsed().as_secs_f64();
        ps();
        let wall = t.elapsed().as_secs_f64();
        assert!(said.contains("(resume, "), "not a resume: {said}");
        let pid = s.status()["pid"].as_u64().unwrap() as u32;
        out.push(Resume {
            wall,
            up,
            state_mib,
            rss_mib: rss_mib(pid),
        });
        eprintln!("{name}: resumed in {up:.1} s, docker ps done at {wall:.1} s");
        std::thread::sleep(Duration::from_secs(20));
    }
    out
}

fn main() {
    let iso = iso();
    let t = tempfile::tempdir().unwrap();
    let (k, i) = extract(&iso, t.path());
    let key = test_support::keygen(t.path()).private;
    let spec = VmSpec::new(&iso);
    let (mut fl, mut first, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..runs() {
        fl.push(floor(&spec, t.path(), &k, &i));
        let disk = t.path().join("disk.img");
        let _ = std::fs::remove_file(&disk);
        let disk = data_disk(t.path(), "disk.img", "4G", "raw", &key, &[]);
        first.push(b2d(&spec, t.path(), &disk, &key, &k, &i));
        warm.push(b2d(&spec, t.path(), &disk, &key, &k, &i));
        eprintln!(
            "round {}: floor {:.1} s, first {:.1} s, warm {:.1} s (guest clock)",
            n + 1,
            fl[n].guest,
            first[n].guest,
            warm[n].guest
        );
    }
    // B2D_BENCH_BOOTS_ONLY=1: the boot cases alone (a quicker run while
    // working on the boot path).
    let boots_only = std::env::var_os("B2D_BENCH_BOOTS_ONLY").is_some();
    let (plain, shared) = if boots_only {
        (Vec::new(), Vec::new())
    } else {
        (
            resumes(&iso, "bench-resume", &["--mount", "none"]),
            resumes(&iso, "bench-resume-share", &[]),
        )
    };
    let m = |v: &[Boot], f: fn(&Boot) -> f64| median(v.iter().map(f).collect());
    let floor_s = m(&fl, |b| b.guest);
    println!(
        "\nboot to docker-ready, medians of {} ({}):",
        runs(),
        qemu_tests::accel::choose(&iso).name()
    );
    println!("| case  | guest s | ratio to floor | wall s | QEMU RSS at ready |");
    println!("|-------|---------|----------------|--------|-------------------|");
    for (name, v) in [("floor", &fl), ("first", &first), ("warm", &warm)] {
        let g = m(v, |b| b.guest);
        println!(
            "| {name:<5} | {g:7.1} | {:13.2}× | {:6.1} | {:13.0} MiB |",
            g / floor_s,
            m(v, |b| b.wall),
            m(v, |b| b.rss_mib as f64)
        );
    }
    let r = |v: &[Resume], f: fn(&Resume) -> f64| median(v.iter().map(f).collect());
    println!(
        "\nresume, `b2d up` to a done `docker ps` (wall), medians of {}:",
        runs()
    );
    println!("| case | wall s | ratio to floor | `b2d up` s | state MiB | QEMU RSS after |");
    println!("|------|--------|----------------|------------|-----------|----------------|");
    for (name, v) in [("no shares", &plain), ("home over virtiofs", &shared)] {
        if v.is_empty() {
            continue;
        }
        let w = r(v, |x| x.wall);
        println!(
            "| {name} | {w:.1} | {:.2}× | {:.1} | {:.0} | {:.0} MiB |",
            w / floor_s,
            r(v, |x| x.up),
            r(v, |x| x.state_mib as f64),
            r(v, |x| x.rss_mib as f64)
        );
    }
    println!("\nphases (medians, s; slowest first by the first boot):");
    println!("| phase | first | warm |");
    println!("|-------|-------|------|");
    let phase = |v: &[Boot], name: &str| {
        median(
            v.iter()
                .filter_map(|b| {
                    b.phases
                        .iter()
                        .find(|p| p.0 == name)
                        .map(|p| p.1 as f64 / 1000.0)
                })
                .collect(),
        )
    };
    let mut names: Vec<&str> = first[0].phases.iter().map(|p| p.0).collect();
    names.sort_by(|a, b| phase(&first, b).total_cmp(&phase(&first, a)));
    for n in names {
        println!("| {n} | {:.2} | {:.2} |", phase(&first, n), phase(&warm, n));
    }
    let size = std::fs::metadata(&iso).map(|m| m.len()).unwrap_or(0);
    println!(
        "\nISO {} ({:.1} MiB)",
        iso.display(),
        size as f64 / (1 << 20) as f64
    );
}
