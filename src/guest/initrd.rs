//! Stage 1: b2d-init as the initramfs `/init`. Load the few drivers that
//! reach the boot medium, find it (ISO 9660, by volume label), mount its
//! squashfs read-only under a tmpfs overlay, move the kernel filesystems
//! across, switch root and exec the agent inside as PID 1 (the contract
//! is iso/README.md, "What b2d-init must do as the initramfs /init").

use super::modules;
use crate::errors::{PathError, WithPath};
use crate::sys::{MsFlags, Sys};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Present only in the initramfs.
pub const MARKER: &str = "etc/b2d/initrd-modules";
pub const LABEL_FILE: &str = "etc/b2d/volume-label";
pub const SQUASHFS: &str = "b2d/rootfs.squashfs";
pub const STAGE2: &str = "/sbin/b2d-init";

#[derive(Debug, thiserror::Error)]
pub enum InitrdError {
    #[error("no boot medium with {SQUASHFS} found within {secs}s; block devices seen: {seen}")]
    NoMedium { secs: u64, seen: String },
    #[error(transparent)]
    Io(#[from] PathError),
}

/// True when running from the initramfs rooted at `root`.
pub fn in_initramfs(root: &Path) -> bool {
    root.join(MARKER).is_file()
}

/// Block devices in search order: whole CD/disk devices, then partitions.
fn block_devices(sys_root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sys_root.join("class/block"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let rank = |n: &str| {
        let whole = !n.chars().last().is_some_and(|c| c.is_ascii_digit()) || n.starts_with("sr");
        let bus = ["sr", "sd", "vd", "nvme"]
            .iter()
            .position(|p| n.starts_with(p))
            .unwrap_or(9);
        (!whole as u8, bus, n.to_string())
    };
    names.retain(|n| !n.starts_with("loop") && !n.starts_with("ram") && !n.starts_with("zram"));
    names.sort_by_key(|n| rank(n));
    names
}

/// Poll for the boot medium: the device whose ISO label is `label`, or
/// failing that any ISO 9660 device (checked for the squashfs by mounting).
pub fn find_medium(
    sys_root: &Path,
    dev_root: &Path,
    label: &str,
    limit: Duration,
) -> Result<(PathBuf, bool), InitrdError> {
    let t0 = Instant::now();
    loop {
        let mut any_iso = None;
        for name in block_devices(sys_root) {
            let node = dev_root.join(&name);
            let Ok(mut f) = std::fs::File::open(&node) else {
                continue;
            };
            match crate::disk::probe::iso9660_label(&mut f) {
                Some(l) if l == label => return Ok((node, true)),
                Some(_) if any_iso.is_none() => any_iso = Some(node),
                _ => {}
            }
        }
        if let Some(n) = any_iso {
            if t0.elapsed() > Duration::from_secs(3) {
                return Ok((n, false));
            }
        }
        if t0.elapsed() > limit {
            return Err(InitrdError::NoMedium {
                secs: limit.as_secs(),
                seen: block_devices(sys_root).join(" "),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mount(
    sys: &dyn Sys,
    src: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), InitrdError> {
    std::fs::create_dir_all(target).with_path("mkdir", target)?;
    Ok(sys
        .mount(Some(src), target, fstype, flags, data)
        .with_path("mount", target)?)
}

/// Steps 1–9 of the contract under `root` (`/` for real), then the switch.
/// Returns the path to exec as the stage-2 PID 1.
pub fn switch(
    sys: &dyn Sys,
    root: &Path,
    release: &str,
    medium_wait: Duration,
) -> Result<PathBuf, InitrdError> {
    let j = |p: &str| root.join(p);
    for (src, dir, fs) in [
        ("devtmpfs", "dev", "devtmpfs"),
        ("proc", "proc", "proc"),
        ("sysfs", "sys", "sysfs"),
    ] {
        if let Err(e) = mount(sys, src, &j(dir), Some(fs), MsFlags::empty(), None) {
            log::warn!("{e}"); // already mounted by the kernel (devtmpfs automount) is fine
        }
    }
    let mdir = j("lib/modules").join(release);
    match modules::ModIndex::load(&mdir) {
        Ok(ix) => {
            let wanted =
                modules::parse_wanted(&std::fs::read_to_string(j(MARKER)).unwrap_or_default());
            let report = modules::load(sys, &mdir, &modules::resolve(&ix, &wanted));
            log::info!("initramfs modules: {report}");
        }
        Err(e) => log::warn!("initramfs modules: {e}"),
    }
    let label = std::fs::read_to_string(j(LABEL_FILE))
        .unwrap_or_default()
        .trim()
        .to_string();
    let (dev, by_label) = find_medium(&j("sys"), &j("dev"), &label, medium_wait)?;
    log::info!(
        "boot medium {} ({})",
        dev.display(),
        if by_label {
            "by label"
        } else {
            "first ISO 9660 device"
        }
    );

    let (medium, ro, rw, new) = (
        j("run/b2d/medium"),
        j("run/b2d/ro"),
        j("run/b2d/rw"),
        j("newroot"),
    );
    mount(
        sys,
        &dev.to_string_lossy(),
        &medium,
        Some("iso9660"),
        MsFlags::MS_RDONLY,
        None,
    )?;
    let image = medium.join(SQUASHFS);
    let lo = sys.loop_attach(&image).with_path("attach", &image)?;
    mount(
        sys,
        &lo.to_string_lossy(),
        &ro,
        Some("squashfs"),
        MsFlags::MS_RDONLY,
        None,
    )?;
    mount(
        sys,
        "tmpfs",
        &rw,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )?;
    for d in ["upper", "work"] {
        std::fs::create_dir_all(rw.join(d)).with_path("mkdir", &rw)?;
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        ro.display(),
        rw.join("upper").display(),
        rw.join("work").display()
    );
    mount(
        sys,
        "overlay",
        &new,
        Some("overlay"),
        MsFlags::empty(),
        Some(&opts),
    )?;
    mount(
        sys,
        "tmpfs",
        &new.join("run"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )?;
    for (from, to) in [
        (&medium, new.join("run/b2d/medium")),
        (&ro, new.join("run/b2d/ro")),
        (&rw, new.join("run/b2d/rw")),
        (&j("dev"), new.join("dev")),
        (&j("proc"), new.join("proc")),
        (&j("sys"), new.join("sys")),
    ] {
        mount(
            sys,
            &from.to_string_lossy(),
            &to,
            None,
            MsFlags::MS_MOVE,
            None,
        )?;
    }
    sys.switch_root(&new).with_path("switch root to", &new)?;
    Ok(PathBuf::from(STAGE2))
}

/// The real stage 1: switch and exec the agent inside, staying PID 1.
pub fn run(sys: &dyn Sys) -> ! {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    match switch(sys, Path::new("/"), &release, Duration::from_secs(30)) {
        Ok(exe) => {
            use std::os::unix::process::CommandExt;
            let err = crate::sys::run::command(&exe)
                .args(std::env::args_os().skip(1))
                .exec();
            panic!("exec {}: {err}", exe.display());
        }
        Err(e) => panic!("initramfs: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;
    use std::io::Cursor;

    fn iso(label: &str) -> Vec<u8> {
        let mut v = vec![0u8; 32768 + 2048];
        v[32768..32774].copy_from_slice(b"\x01CD001");
        let mut l = [b' '; 32];
        l[..label.len()].copy_from_slice(label.as_bytes());
        v[32768 + 40..32768 + 72].copy_from_slice(&l);
        v
    }

    #[test]
    fn reads_iso_labels() {
        assert_eq!(
            crate::disk::probe::iso9660_label(&mut Cursor::new(iso("B2D-0.1.0"))).as_deref(),
            Some("B2D-0.1.0")
        );
        assert_eq!(
            crate::disk::probe::iso9660_label(&mut Cursor::new(vec![0u8; 40000])),
            None
        );
        assert_eq!(
            crate::disk::probe::iso9660_label(&mut Cursor::new(vec![0u8; 100])),
            None
        );
    }

    fn rig() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let w = |p: &str, data: &[u8]| {
            let p = t.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        };
        w(MARKER, b"squashfs\n");
        w(LABEL_FILE, b"B2D-0.1.0\n");
        w(
            "lib/modules/6.1/modules.dep",
            b"kernel/fs/squashfs/squashfs.ko.xz:\n",
        );
        w("lib/modules/6.1/kernel/fs/squashfs/squashfs.ko.xz", b"");
        for dev in ["sda", "sr0", "sda1"] {
            std::fs::create_dir_all(t.path().join("sys/class/block").join(dev)).unwrap();
        }
        w("dev/sda", &iso("OTHER")); // an ISO that is not ours comes first
        w("dev/sda1", b"");
        w("dev/sr0", &iso("B2D-0.1.0"));
        t
    }

    #[test]
    fn orders_whole_disks_first_cdroms_first() {
        let t = rig();
        assert_eq!(block_devices(&t.path().join("sys")), ["sr0", "sda", "sda1"]);
    }

    #[test]
    fn switches_in_contract_order() {
        let t = rig();
        let sys = FakeSys::new();
        let exe = switch(&sys, t.path(), "6.1", Duration::from_secs(1)).unwrap();
        assert_eq!(exe, PathBuf::from("/sbin/b2d-init"));
        let r = t.path().display().to_string();
        let calls: Vec<String> = sys
            .calls()
            .into_iter()
            .map(|c| c.replace(&r, "R"))
            .collect();
        assert_eq!(
            calls,
            [
                "mount devtmpfs R/dev devtmpfs - -",
                "mount proc R/proc proc - -",
                "mount sysfs R/sys sysfs - -",
                "finit_module R/lib/modules/6.1/kernel/fs/squashfs/squashfs.ko.xz",
                "mount R/dev/sr0 R/run/b2d/medium iso9660 rdonly -",
                "loop_attach R/run/b2d/medium/b2d/rootfs.squashfs",
                "mount /dev/loop0 R/run/b2d/ro squashfs rdonly -",
                "mount tmpfs R/run/b2d/rw tmpfs - mode=0755",
                "mount overlay R/newroot overlay - lowerdir=R/run/b2d/ro,upperdir=R/run/b2d/rw/upper,workdir=R/run/b2d/rw/work",
                "mount tmpfs R/newroot/run tmpfs nosuid|nodev mode=0755",
                "mount R/run/b2d/medium R/newroot/run/b2d/medium - move -",
                "mount R/run/b2d/ro R/newroot/run/b2d/ro - move -",
                "mount R/run/b2d/rw R/newroot/run/b2d/rw - move -",
                "mount R/dev R/newroot/dev - move -",
                "mount R/proc R/newroot/proc - move -",
                "mount R/sys R/newroot/sys - move -",
                "switch_root R/newroot",
            ]
        );
    }

    #[test]
    fn no_medium_is_an_error_listing_devices() {
        let t = rig();
        std::fs::write(t.path().join("dev/sr0"), b"").unwrap();
        std::fs::write(t.path().join("dev/sda"), b"").unwrap();
        let e = find_medium(
            &t.path().join("sys"),
            &t.path().join("dev"),
            "B2D-0.1.0",
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(e.to_string().contains("sr0 sda sda1"), "{e}");
    }
}
