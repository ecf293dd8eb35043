//! `make bench-shares`: the cost of crossing the VM boundary, as ratios
//! measured in one run on one machine.
//!
//! Through each share mechanism (virtiofs, then 9p after a reboot of the
//! same machine), on the guest's data disk and on the host directly,
//! each case three times (medians): write then read 256 MiB; create,
//! stat and delete 10 000 small files; `tar x` of a tree of 5 000 files
//! (`B2D_BENCH_SCALE=N`: an N-th of each). virtiofs is measured twice,
//! its rounds alternated: as b2d serves it (confined) and as it was
//! served before the confinement ([`shares_plain`]), on the same folder. Then the throughput of one
//! forwarded port, both ways (host ⇄ 127.0.0.1:P ⇄ container), against
//! the guest's own loopback, and how soon a published port accepts.
//! Needs `out/b2d.iso` and a release `b2d` (`make bench` builds both) and
//! root on the host only to drop the host's page cache.

#[path = "shares_plain.rs"]
mod shares_plain;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NAME: &str = "bench-shares";

/// One round of the file cases in `dir`, timed from /proc/uptime so the
/// same script measures the host and the guest; `tar` names the archive.
/// Each case this many times (`B2D_BENCH_RUNS`, default 3).
fn runs() -> usize {
    test_support::bench_runs(3)
}

/// `B2D_BENCH_SCALE=N` divides every workload by N (the sample in
/// `make test` uses 10: the same cases, a tenth of the bytes and files).
fn scale() -> usize {
    test_support::bench_count("B2D_BENCH_SCALE", 1)
}

fn script(dir: &str, tar: &str) -> String {
    let (mib, files) = ((256 / scale()).max(1), (10_000 / scale()).max(1));
    format!(
        r#"set -e
d={dir}/b2d-bench; rm -rf "$d"; mkdir -p "$d"; cd "$d"
t() {{ read a _ < /proc/uptime; echo "$a"; }}
drop() {{ sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }}
s=$(t); dd if=/dev/zero of=big bs=1M count={mib} conv=fsync 2>/dev/null; e=$(t); echo "write $s $e"
drop
s=$(t); dd if=big of=/dev/null bs=1M 2>/dev/null; e=$(t); echo "read $s $e"
rm -f big
s=$(t); mkdir f; i=0; while [ $i -lt {files} ]; do : > f/$i; i=$((i+1)); done; ls -l f > /dev/null; rm -rf f; e=$(t); echo "files $s $e"
s=$(t); tar xf {tar}; e=$(t); echo "untar $s $e"
cd /; rm -rf "$d"
"#
    )
}

/// `case seconds` pairs from a script's output.
fn parse(out: &str) -> Vec<(String, f64)> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (name, s, e) = (w.next()?, w.next()?, w.next()?);
            Some((
                name.to_string(),
                e.parse::<f64>().ok()? - s.parse::<f64>().ok()?,
            ))
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Bench {
    b2d: PathBuf,
    dir: tempfile::TempDir,
}

impl Bench {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.b2d);
        c.args(args)
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_RUNTIME_DIR", test_support::runtime_dir())
            .env("HOME", self.dir.path().join("home"))
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .stdin(Stdio::null());
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("running b2d");
        assert!(
            out.status.success(),
            "b2d {}: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn guest(&self, sh: &str) -> String {
        self.ok(&["ssh", NAME, "--", "sudo", "sh", "-c", &shell_quote(sh)])
    }

    fn docker(&self, args: &[&str]) -> String {
        let mut c = Command::new("docker");
        c.arg("--context")
            .arg(format!("b2d-{NAME}"))
            .args(args)
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .env_remove("DOCKER_HOST");
        let out = c.output().expect("the docker CLI");
        assert!(
            out.status.success(),
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Bench {
    /// Wait until netblast in container `c` listens (a connection to the
    /// forward before that reaches docker-proxy and ends at once).
    fn listening(&self, c: &str) {
        let t0 = Instant::now();
        while !self.docker(&["logs", c]).contains("listening") {
            assert!(t0.elapsed() < Duration::from_secs(30), "{c} never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-f", NAME]).output();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A tree of 5 000 files of 1 KiB in 100 directories (divided by
/// [`scale`]), as a tar.
fn source_tar(dir: &Path) -> PathBuf {
    let src = dir.join("tree");
    for d in 0..(100 / scale()).max(1) {
        let sub = src.join(format!("d{d}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..50 {
            std::fs::write(sub.join(format!("f{f}.c")), [b'x'; 1024]).unwrap();
        }
    }
    let tar = dir.join("src.tar");
    let st = Command::new("tar")
        .args([
            "-C",
            src.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(&src).unwrap();
    tar
}

fn run_cases(label: &str, mut once: impl FnMut() -> String) -> Vec<(String, f64)> {
    let mut one: [(&str, &mut dyn FnMut() -> String); 1] = [(label, &mut once)];
    alternated(&mut one).remove(0)
}

/// Each of `sides` once a round, for [`runs`] rounds: the medians of
/// each side, per case.
#[allow(clippy::type_complexity)]
fn alternated(sides: &mut [(&str, &mut dyn FnMut() -> String)]) -> Vec<Vec<(String, f64)>> {
    let mut all: Vec<Vec<Vec<(String, f64)>>> = vec![Vec::new(); sides.len()];
    for _ in 0..runs() {
        for (i, (_, once)) in sides.iter_mut().enumerate() {
            all[i].push(parse(&once()));
        }
    }
    sides
        .iter()
        .zip(all)
        .map(|((label, _), all)| {
            let names: Vec<String> = all[0].iter().map(|(n, _)| n.clone()).collect();
            names
                .into_iter()
                .map(|n| {
                    let v = all
                        .iter()
                        .filter_map(|r| r.iter().find(|(m, _)| *m == n).map(|(_, s)| *s))
                        .collect();
                    let m = median(v);
                    eprintln!("  {label:<14} {n:<6} {m:8.2} s");
                    (n, m)
                })
                .collect()
        })
        .collect()
}

/// The static netblast `make bench-shares` builds.
fn netblast() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("x86_64-unknown-linux-musl/release/examples/netblast")
}

/// Connect to 127.0.0.1:`port` as soon as it accepts: seconds waited.
fn connect(port: u16) -> (f64, std::net::TcpStream) {
    let t0 = Instant::now();
    loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return (t0.elapsed().as_secs_f64(), s),
            Err(_) if t0.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("127.0.0.1:{port}: {e}"),
        }
    }
}

/// Seconds to push `bytes` into a listener that closes at EOF.
fn push(mut s: std::net::TcpStream, bytes: usize) -> f64 {
    let chunk = vec![0u8; 1 << 20];
    let start = Instant::now();
    for _ in 0..bytes / chunk.len() {
        s.write_all(&chunk).unwrap();
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut sink = [0u8; 64];
    let _ = s.read(&mut sink); // the listener closes once it has it all
    start.elapsed().as_secs_f64()
}

/// Seconds to read `bytes` a container sends, to its EOF.
fn pull(mut s: std::net::TcpStream, bytes: usize) -> f64 {
    let mut buf = vec![0u8; 1 << 20];
    let (start, mut got) = (Instant::now(), 0);
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got += n;
    }
    assert_eq!(got, bytes, "the container sent all of it");
    start.elapsed().as_secs_f64()
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let iso = std::env::var_os("B2D_ISO")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("out/b2d.iso"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let b = Bench {
        b2d: target.join("release/b2d"),
        dir: tempfile::tempdir().unwrap(),
    };
    let share = b.dir.path().join("share");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::create_dir_all(b.dir.path().join("home")).unwrap();
    let tar = source_tar(&share);
    let share_s = share.to_str().unwrap().to_string();
    let tar_s = tar.to_str().unwrap().to_string();
    eprintln!("booting the bench machine…");
    b.ok(&[
        "up",
        NAME,
        "--iso",
        iso.to_str().unwrap(),
        "--mount",
        &share_s,
        "--mount-type",
        "virtiofs",
        "--disk-size",
        "4G",
        "--memory",
        "2G",
        "--timeout",
        "600",
    ]);
    b.guest(&format!("cp {tar_s} /mnt/sda1/src.tar"));
    // netblast (examples/netblast.rs, static) moves the bytes in the
    // container; placed in the image root before busybox_image tars it.
    let bin = b.dir.path().join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(netblast(), bin.join("netblast")).expect("make bench-shares builds netblast");
    let image = test_support::busybox_image(b.dir.path(), &["sh", "sleep"], &[]);
    b.docker(&["import", image.to_str().unwrap(), "bb"]);

    // B2D_BENCH_PARTS=shares or =ports runs one half (default: both).
    let parts = std::env::var("B2D_BENCH_PARTS").unwrap_or_else(|_| "shares,ports".into());
    if parts.split(',').any(|p| p == "shares") {
        shares(&b, &share_s, &tar_s);
    }
    if parts.split(',').any(|p| p == "ports") {
        ports(&b);
    }
}

/// The share cases: host, guest disk, virtiofs, then 9p after a reboot.
fn shares(b: &Bench, share_s: &str, tar_s: &str) {
    eprintln!("medians of {} runs:", runs());
    let host = run_cases("host", || {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script(share_s, tar_s))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    let disk = run_cases("guest-disk", || {
        b.guest(&script("/mnt/sda1", "/mnt/sda1/src.tar"))
    });
    let machine = b.dir.path().join("data/b2d/machines").join(NAME);
    let plain = shares_plain::attach(&machine, Path::new(share_s), |sh| b.guest(sh));
    let plain_tar = format!("{}/src.tar", shares_plain::MOUNT);
    let mut confined = || b.guest(&script(share_s, tar_s));
    let mut unconfined = || b.guest(&script(shares_plain::MOUNT, &plain_tar));
    let mut ab = alternated(&mut [
        ("virtiofs", &mut confined),
        ("virtiofs-plain", &mut unconfined),
    ]);
    let (virtiofs, before) = (ab.remove(0), ab.remove(0));
    plain.detach(&machine, |sh| b.guest(sh));
    println!(
        "{:<8}{:>12}{:>12}{:>16}",
        "case", "confined s", "plain s", "confined/plain"
    );
    for (i, (n, c)) in virtiofs.iter().enumerate() {
        let p = before[i].1;
        println!("{n:<8}{c:>12.2}{p:>12.2}{:>15.2}x", c / p);
    }
    // The same machine and disk, booted again with the other mechanism.
    b.ok(&["stop", NAME]);
    b.ok(&["up", NAME, "--mount-type", "9p", "--timeout", "600"]);
    let ninep = run_cases("9p", || b.guest(&script(share_s, tar_s)));

    println!(
        "{:<8}{:>9}{:>9}{:>12}{:>9}{:>16}{:>16}",
        "case", "host s", "disk s", "virtiofs s", "9p s", "virtiofs/disk", "9p/disk"
    );
    for (i, (n, h)) in host.iter().enumerate() {
        let (d, v, p) = (disk[i].1, virtiofs[i].1, ninep[i].1);
        // For write/read a ratio of throughputs (higher is better), for
        // the file cases a ratio of times (lower is better).
        let ratio = |x: f64| {
            if n == "write" || n == "read" {
                format!("{:.2}x thr", d / x)
            } else {
                format!("{:.2}x time", x / d)
            }
        };
        println!(
            "{n:<8}{h:>9.2}{d:>9.2}{v:>12.2}{p:>9.2}{:>16}{:>16}",
            ratio(v),
            ratio(p)
        );
    }
}

/// One forwarded port both ways against the guest's own loopback, and
/// how soon a published port accepts.
fn ports(b: &Bench) {
    // One forwarded port against the guest's own loopback, 128 MiB each
    // (divided by the scale, in whole MiB: push() sends 1 MiB chunks).
    let bytes = (128 / scale()).max(1) << 20;
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (mut fwd, mut back, mut lo, mut lat) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let n = bytes.to_string();
    for _ in 0..runs() {
        // A new port each time: the last one's forward may not be gone yet.
        let port = free();
        let published = format!("{port}:5001");
        // host → container
        let c = b.docker(&[
            "run", "-d", "-p", &published, "bb", "netblast", "recv", "5001",
        ]);
        b.listening(c.trim());
        let (_, s) = connect(port);
        fwd.push(push(s, bytes));
        let _ = b.docker(&["wait", c.trim()]);
        let got = b.docker(&["logs", c.trim()]);
        assert!(
            got.contains(&format!("got {bytes}")),
            "the container got {got}"
        );
        let _ = b.docker(&["rm", "-f", c.trim()]);
        // container → host
        let port = free();
        let published = format!("{port}:5001");
        let c = b.docker(&[
            "run", "-d", "-p", &published, "bb", "netblast", "serve", "5001", &n,
        ]);
        b.listening(c.trim());
        let (_, s) = connect(port);
        back.push(pull(s, bytes));
        let _ = b.docker(&["rm", "-f", c.trim()]);
        // How soon a published port accepts on the host (docker-proxy
        // listens in the guest as the container starts).
        let port = free();
        let published = format!("{port}:80");
        let c = b.docker(&["run", "-d", "-p", &published, "bb", "sleep", "60"]);
        lat.push(connect(port).0);
        let _ = b.docker(&["rm", "-f", c.trim()]);
        // container → container, over the guest's loopback
        let out = b.docker(&[
            "run",
            "--rm",
            "bb",
            "sh",
            "-c",
            &format!("netblast recv 5001 & sleep 1; netblast send 127.0.0.1:5001 {n}; wait"),
        ]);
        assert!(out.contains(&format!("got {bytes}")), "loopback: {out}");
        let secs = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("sent {bytes} ")))
            .and_then(|t| t.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no time in {out}"));
        lo.push(secs);
    }
    let (f, p, l) = (median(fwd), median(back), median(lo));
    let mib = (bytes >> 20) as f64;
    println!(
        "port    forwarded host->guest {:.1} MiB/s ({:.2}x loopback), guest->host {:.1} MiB/s ({:.2}x), guest loopback {:.1} MiB/s",
        mib / f,
        l / f,
        mib / p,
        l / p,
        mib / l,
    );
    println!(
        "port    forward ready {:.2} s after docker run returned (median)",
        median(lat)
    );
}
