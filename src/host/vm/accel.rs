//! KVM when it really works, else TCG. Nested KVM can exist and still hang
//! or assert, so `/dev/kvm` alone proves nothing: boot a real guest for a
//! few seconds and require the kernel's first line on the serial port.

use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
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
/// the rest of this host boot (see [`Cache`]).
pub fn choose(iso: &Path) -> Accel {
    static CHOSEN: OnceLock<Accel> = OnceLock::new();
    *CHOSEN.get_or_init(|| match std::env::var("B2D_ACCEL").as_deref() {
        Ok("kvm") => Accel::Kvm,
        Ok("tcg") => Accel::Tcg,
        _ => {
            let cache = Cache::here();
            let a = match cache.as_ref().and_then(Cache::read) {
                Some(a) => a,
                None => {
                    let a = if probe_kvm(iso, Duration::from_secs(25)) {
                        Accel::Kvm
                    } else {
                        Accel::Tcg
                    };
                    if let Some(c) = &cache {
                        c.write(a);
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
    let cached = Cache::here().as_ref().and_then(Cache::read).is_some();
    !overridden && !cached && Path::new("/dev/kvm").exists()
}

/// The probe's answer for this host boot, one probe per host boot: each
/// test runs in its own process, and a hanging nested KVM costs the whole
/// probe time.
///
/// It is the file `accel` (`BOOT_ID kvm|tcg`) in a directory only the
/// user can write: `$XDG_RUNTIME_DIR/b2d/` when that is the user's own
/// (0700, as the XDG spec requires), else the b2d store's directory
/// (`$XDG_DATA_HOME/b2d/`); the boot id tells an answer of an earlier
/// host boot. The file is made 0600 by an atomic rename, opened with
/// `O_NOFOLLOW`, and used only if it is a regular file of the user's that
/// nobody else may write: anything else (a link, a FIFO, another user's
/// file) is ignored and replaced, never followed. Another local user can
/// neither plant an answer nor redirect the write (once a fixed name in
/// `/tmp`).
#[derive(Debug)]
struct Cache {
    file: PathBuf,
    boot_id: String,
    /// The user the directory and the file must belong to.
    uid: u32,
}

/// The cache file's name in its directory.
const CACHE_FILE: &str = "accel";

impl Cache {
    /// The cache of this user and host boot, if there is a directory to
    /// keep it in.
    fn here() -> Option<Cache> {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let uid = nix::unistd::geteuid().as_raw();
        let store = crate::host::store::Store::from_env().ok()?;
        let data = store.root.parent()?.to_path_buf();
        let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
        Some(Cache {
            file: cache_dir(runtime.as_deref(), &data, uid)?.join(CACHE_FILE),
            boot_id: boot_id.trim().to_string(),
            uid,
        })
    }

    /// The answer kept for this host boot, if a trustworthy one is there.
    fn read(&self) -> Option<Accel> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&self.file)
            .ok()?;
        let meta = f.metadata().ok()?;
        if !meta.is_file() || !private(meta.uid(), meta.mode(), self.uid) {
            log::debug!(
                "{}: not a file of this user's: ignored",
                self.file.display()
            );
            return None;
        }
        let mut text = String::new();
        f.take(256).read_to_string(&mut text).ok()?;
        let (boot_id, accel) = text.trim().split_once(' ')?;
        if boot_id != self.boot_id {
            return None;
        }
        match accel {
            "kvm" => Some(Accel::Kvm),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }

    /// Keep `a` for the rest of this host boot (best effort: a failure
    /// costs the next `up` a probe).
    fn write(&self, a: Accel) {
        let text = format!("{} {}\n", self.boot_id, a.name());
        if let Err(e) = crate::atomic::replace(&self.file, text.as_bytes(), 0o600) {
            log::debug!("accelerator cache: {e}");
        }
    }
}

/// Whether a file or directory of owner `uid` and mode `mode` is `user`'s
/// alone to write.
fn private(uid: u32, mode: u32, user: u32) -> bool {
    uid == user && mode & 0o022 == 0
}

/// `$XDG_RUNTIME_DIR/b2d` when `runtime` is an absolute directory of
/// `uid`'s with mode 0700 (the XDG spec's), else `data` (the b2d store's
/// directory); either is made 0700 if missing, and used only if it is a
/// real directory (not a link) that only `uid` can write.
fn cache_dir(runtime: Option<&Path>, data: &Path, uid: u32) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let usable_runtime = runtime.filter(|r| {
        r.is_absolute()
            && std::fs::symlink_metadata(r)
                .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0)
    });
    let dir = match usable_runtime {
        Some(r) => r.join("b2d"),
        None => data.to_path_buf(),
    };
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    (meta.is_dir() && private(meta.uid(), meta.mode(), uid)).then_some(dir)
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
    let child = crate::sys::run::command(crate::host::vm::binary::name())
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
    // Piped above, so there; without it nothing can be seen.
    let Some(mut out) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return false;
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn me() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_runtime_dir_when_it_is_the_users_own_else_the_store() {
        let t = tempfile::tempdir().unwrap();
        let (run, data) = (t.path().join("run"), t.path().join("data/b2d"));
        std::fs::create_dir(&run).unwrap();
        chmod(&run, 0o700);
        let d = cache_dir(Some(&run), &data, me()).unwrap();
        assert_eq!(d, run.join("b2d"));
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        // A runtime dir others may enter, a relative one, none, or one of
        // another user's: the store's directory, made 0700.
        chmod(&run, 0o755);
        assert_eq!(cache_dir(Some(&run), &data, me()).unwrap(), data);
        assert_eq!(std::fs::metadata(&data).unwrap().mode() & 0o777, 0o700);
        chmod(&run, 0o700);
        assert_eq!(
            cache_dir(Some(Path::new("run")), &data, me()).unwrap(),
            data
        );
        assert_eq!(cache_dir(None, &data, me()).unwrap(), data);
        assert_eq!(cache_dir(Some(&run), &data, me() + 1), None);
        // A directory others may write, or a link in its place: no cache.
        chmod(&data, 0o777);
        assert_eq!(cache_dir(None, &data, me()), None);
        chmod(&data, 0o700);
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&data, &link).unwrap();
        assert_eq!(cache_dir(None, &link, me()), None);
    }

    #[test]
    fn an_answer_is_kept_for_this_host_boot_only_and_private() {
        let t = tempfile::tempdir().unwrap();
        let c = Cache {
            file: t.path().join(CACHE_FILE),
            boot_id: "boot-1".into(),
            uid: me(),
        };
        assert_eq!(c.read(), None);
        c.write(Accel::Kvm);
        assert_eq!(c.read(), Some(Accel::Kvm));
        let meta = std::fs::symlink_metadata(&c.file).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o777, 0o600);
        let later = Cache {
            boot_id: "boot-2".into(),
            ..c
        };
        assert_eq!(later.read(), None, "an answer of another host boot");
        later.write(Accel::Tcg);
        assert_eq!(later.read(), Some(Accel::Tcg));
        // A file of another user's, or one others may write, is not trusted.
        let other = Cache {
            uid: me() + 1,
            file: later.file.clone(),
            boot_id: later.boot_id.clone(),
        };
        assert_eq!(other.read(), None);
        chmod(&later.file, 0o666);
        assert_eq!(later.read(), None);
    }

    #[test]
    fn a_planted_link_or_fifo_is_neither_followed_nor_read() {
        let t = tempfile::tempdir().unwrap();
        let c = Cache {
            file: t.path().join(CACHE_FILE),
            boot_id: "boot-1".into(),
            uid: me(),
        };
        // A link to a file saying "kvm": not believed, and the write
        // replaces the link without touching what it points at.
        let victim = t.path().join("victim");
        std::fs::write(&victim, "boot-1 kvm\n").unwrap();
        std::os::unix::fs::symlink(&victim, &c.file).unwrap();
        assert_eq!(c.read(), None);
        c.write(Accel::Tcg);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "boot-1 kvm\n");
        assert!(std::fs::symlink_metadata(&c.file).unwrap().is_file());
        assert_eq!(c.read(), Some(Accel::Tcg));
        // A FIFO is not waited on.
        std::fs::remove_file(&c.file).unwrap();
        nix::unistd::mkfifo(&c.file, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(c.read(), None);
        c.write(Accel::Kvm);
        assert_eq!(c.read(), Some(Accel::Kvm));
    }
}
