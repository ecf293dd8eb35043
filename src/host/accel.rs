//! KVM when it really works, else TCG. Nested KVM can exist and still hang
//! or assert, so `/dev/kvm` alone proves nothing: boot a real guest for a
//! few seconds and require the kernel's first line on the serial port.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// The `-accel` value. TCG runs single-threaded: multi-threaded TCG in
    /// QEMU 7.2 races with the guest kernel patching its own text (an int3
    /// oops in urandom_read_iter was seen when the crng static key flipped).
    /// Its translated code is capped at 64 MiB: QEMU's default 1 GiB cache
    /// filled to about 430 MiB by the end of a boot, more than the guest
    /// itself held, and the cap cost about 10 % of a cold boot here
    /// (README, "Memory on the host").
    pub fn qemu_arg(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg,thread=single,tb-size=64",
        }
    }

    /// The CPU the guest sees. Under TCG, QEMU 7.2's default `qemu64`
    /// without CMPXCHG16B: its emulation of that instruction (the guest
    /// kernel's slab allocator runs it on every allocation) now and then
    /// left EFLAGS holding a pointer instead of the flags, and the guest
    /// died of a double fault or a fault in an interrupt a moment later;
    /// in both oopses seen the saved EFLAGS was a register's low 32 bits
    /// with ZF set, right after a `cmpxchg16b %gs:`. Without the feature
    /// the kernel takes its locked path instead.
    pub fn cpu_arg(self) -> &'static str {
        match self {
            Accel::Kvm => "host",
            Accel::Tcg => "qemu64,-cx16",
        }
    }
}

/// `B2D_ACCEL=kvm|tcg` overrides the probe; the probe's answer is kept for
/// the rest of this host boot.
pub fn choose(iso: &Path) -> Accel {
    static CHOSEN: OnceLock<Accel> = OnceLock::new();
    *CHOSEN.get_or_init(|| match std::env::var("B2D_ACCEL").as_deref() {
        Ok("kvm") => Accel::Kvm,
        Ok("tcg") => Accel::Tcg,
        _ => {
            let cache = cache_file();
            let a = match cache
                .as_ref()
                .and_then(|c| std::fs::read_to_string(c).ok())
                .as_deref()
            {
                Some("kvm") => Accel::Kvm,
                Some("tcg") => Accel::Tcg,
                _ => {
                    let a = if probe_kvm(iso, Duration::from_secs(25)) {
                        Accel::Kvm
                    } else {
                        Accel::Tcg
                    };
                    if let Some(c) = &cache {
                        let _ = std::fs::write(c, a.name());
                    }
                    a
                }
            };
            log::debug!("accelerator: {a:?}");
            a
        }
    })
}

/// Whether `choose` is going to run the probe boot (no override, no
/// answer cached for this host boot), so callers can say why they wait.
pub fn will_probe() -> bool {
    let overridden = matches!(std::env::var("B2D_ACCEL").as_deref(), Ok("kvm" | "tcg"));
    let cached = cache_file()
        .and_then(|c| std::fs::read_to_string(c).ok())
        .is_some_and(|v| v == "kvm" || v == "tcg");
    !overridden && !cached && Path::new("/dev/kvm").exists()
}

/// One probe per host boot: each test runs in its own process, and a
/// hanging nested KVM costs the whole probe time.
fn cache_file() -> Option<std::path::PathBuf> {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(std::env::temp_dir().join(format!("b2d-accel-{}", boot_id.trim())))
}

/// Boot `iso` under KVM and wait for "Linux version" on the serial console.
pub fn probe_kvm(iso: &Path, limit: Duration) -> bool {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return false;
    }
    let child = Command::new(super::vmspec::binary())
        .args([
            "-accel",
            "kvm",
            "-m",
            "256",
            "-nodefaults",
            "-nographic",
            "-no-reboot",
        ])
        .args(["-serial", "stdio", "-display", "none", "-cdrom"])
        .arg(iso)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(13).any(|w| w == b"Linux version") {
                let _ = tx.send(());
                break;
            }
        }
    });
    let t0 = Instant::now();
    let ok = rx.recv_timeout(limit.saturating_sub(t0.elapsed())).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    ok
}
