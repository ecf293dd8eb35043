//! [`RealSys`]: the [`Sys`] seam over the running kernel (mount(2),
//! finit_module(2), block and loop ioctls, reboot(2), child processes).
//!
//! Why not the `sys-mount` crate (3.1, evaluated for this file): its loop
//! device support, the part that would replace `loop_attach`, comes from
//! `loopdev-3`, whose build script runs bindgen and so needs libclang on
//! every build machine (the musl build fails here without it: "Unable to
//! find libclang"). With `default-features = false` it builds statically
//! for `x86_64-unknown-linux-musl`, but then it has no loop devices at all
//! and only wraps mount(2)/umount2(2), which `nix::mount` already does in
//! one call each, at the price of `tracing` and `smart-default` in PID 1.
//! So mounts stay on `nix`, and the three loop ioctls stay hand-written.

use super::{is_compressed_module, CmdOutput, MsFlags, PowerAction, Sys};
use crate::errors::{PathError, WithPath};
use std::io;
use std::path::{Path, PathBuf};

/// The real kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealSys;

nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
nix::ioctl_none!(blkrrpart, 0x12, 95);
nix::ioctl_none!(loop_ctl_get_free, 0x4C, 0x82);
nix::ioctl_write_int_bad!(loop_set_fd, 0x4C00);

/// `struct blkpg_partition` from <linux/blkpg.h>.
#[repr(C)]
struct BlkpgPartition {
    start: libc::c_longlong,
    length: libc::c_longlong,
    pno: libc::c_int,
    devname: [libc::c_char; 64],
    volname: [libc::c_char; 64],
}

/// `struct blkpg_ioctl_arg` from <linux/blkpg.h>.
#[repr(C)]
struct BlkpgIoctlArg {
    op: libc::c_int,
    flags: libc::c_int,
    datalen: libc::c_int,
    data: *mut libc::c_void,
}

const BLKPG_ADD_PARTITION: libc::c_int = 1;
nix::ioctl_write_ptr_bad!(blkpg, nix::request_code_none!(0x12, 105), BlkpgIoctlArg);

// The seam speaks `io::Error`: each error below is a [`PathError`] inside
// one (`?` converts), so the kind, the errno and the path all survive.

impl Sys for RealSys {
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        Ok(nix::mount::mount(source, target, fstype, flags, data).with_path("mount", target)?)
    }

    fn umount(&self, target: &Path, detach: bool) -> io::Result<()> {
        let flags = if detach {
            nix::mount::MntFlags::MNT_DETACH
        } else {
            nix::mount::MntFlags::empty()
        };
        Ok(nix::mount::umount2(target, flags).with_path("umount", target)?)
    }

    fn mknod(&self, path: &Path, block: bool, mode: u32, major: u64, minor: u64) -> io::Result<()> {
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        let kind = if block {
            SFlag::S_IFBLK
        } else {
            SFlag::S_IFCHR
        };
        Ok(mknod(
            path,
            kind,
            Mode::from_bits_truncate(mode),
            makedev(major, minor),
        )
        .with_path("mknod", path)?)
    }

    fn finit_module(&self, file: &Path, params: &str) -> io::Result<()> {
        use std::os::unix::io::AsRawFd;
        let f = std::fs::File::open(file).with_path("open module", file)?;
        let params = std::ffi::CString::new(params)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in module params"))?;
        // A compressed module (.ko.xz / .ko.zst / .ko.gz) is handed to the
        // kernel as is with MODULE_INIT_COMPRESSED_FILE, which the kernel
        // decompresses itself (Linux >= 5.17 with CONFIG_MODULE_DECOMPRESS).
        // Neither nix's ModuleInitFlags nor libc name this flag, so the
        // syscall is made directly.
        let flags = if is_compressed_module(file) {
            MODULE_INIT_COMPRESSED_FILE
        } else {
            0
        };
        // SAFETY: finit_module(2) takes an fd, a NUL-terminated string and
        // an int; `f` and `params` are alive for the duration of the call and
        // the kernel only reads from them.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_finit_module,
                f.as_raw_fd(),
                params.as_ptr(),
                flags,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EEXIST) => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: already loaded", file.display()),
            )),
            Some(libc::EOPNOTSUPP) if flags != 0 => Err(io::Error::new(
                e.kind(),
                format!(
                    "finit_module {}: this kernel cannot decompress modules \
                     (needs CONFIG_MODULE_DECOMPRESS with this compression); \
                     ship uncompressed modules: {e}",
                    file.display()
                ),
            )),
            _ => Err(PathError::new("finit_module", file, e).into()),
        }
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        nix::unistd::sethostname(name).map_err(io::Error::from)
    }

    fn swapon(&self, dev: &Path) -> io::Result<()> {
        let c = cpath(dev)?;
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        let rc = unsafe { libc::swapon(c.as_ptr(), 0) };
        Ok(check(rc).with_path("swapon", dev)?)
    }

    fn swapoff(&self, dev: &Path) -> io::Result<()> {
        let c = cpath(dev)?;
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        let rc = unsafe { libc::swapoff(c.as_ptr()) };
        Ok(check(rc).with_path("swapoff", dev)?)
    }

    fn sync(&self) {
        nix::unistd::sync();
    }

    fn device_size(&self, dev: &Path) -> io::Result<u64> {
        use std::os::unix::fs::FileTypeExt;
        use std::os::unix::io::AsRawFd;
        let f = std::fs::File::open(dev).with_path("open", dev)?;
        let meta = f.metadata()?;
        if !meta.file_type().is_block_device() {
            return Ok(meta.len());
        }
        let mut size = 0u64;
        // SAFETY: BLKGETSIZE64 writes one u64 through the pointer; `f` is an
        // open block device for the duration of the call.
        unsafe { blkgetsize64(f.as_raw_fd(), &mut size) }.with_path("BLKGETSIZE64", dev)?;
        Ok(size)
    }

    fn reread_partitions(&self, dev: &Path) -> io::Result<()> {
        use std::os::unix::io::AsRawFd;
        let f = std::fs::File::open(dev).with_path("open", dev)?;
        // SAFETY: BLKRRPART takes no argument; `f` is open for the call.
        unsafe { blkrrpart(f.as_raw_fd()) }.with_path("BLKRRPART", dev)?;
        Ok(())
    }

    fn add_partition(&self, dev: &Path, number: u32, start: u64, len: u64) -> io::Result<()> {
        use std::os::unix::io::AsRawFd;
        let f = std::fs::File::open(dev).with_path("open", dev)?;
        let mut part = BlkpgPartition {
            start: start as libc::c_longlong,
            length: len as libc::c_longlong,
            pno: number as libc::c_int,
            devname: [0; 64],
            volname: [0; 64],
        };
        let arg = BlkpgIoctlArg {
            op: BLKPG_ADD_PARTITION,
            flags: 0,
            datalen: std::mem::size_of::<BlkpgPartition>() as libc::c_int,
            data: (&mut part as *mut BlkpgPartition).cast(),
        };
        // SAFETY: BLKPG reads `arg` and the `part` it points to, both alive
        // and correctly laid out (repr(C) copies of the kernel structs) for
        // the duration of the call; `f` is an open block device.
        unsafe { blkpg(f.as_raw_fd(), &arg) }.with_path("BLKPG add partition", dev)?;
        Ok(())
    }

    fn loop_attach(&self, file: &Path) -> io::Result<PathBuf> {
        use std::os::unix::io::AsRawFd;
        let ctl =
            std::fs::File::open("/dev/loop-control").with_path("open", "/dev/loop-control")?;
        let backing = std::fs::File::open(file).with_path("open", file)?;
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a number.
        let n = unsafe { loop_ctl_get_free(ctl.as_raw_fd()) }
            .with_path("LOOP_CTL_GET_FREE", "/dev/loop-control")?;
        let node = PathBuf::from(format!("/dev/loop{n}"));
        let t0 = std::time::Instant::now();
        while !node.exists() && t0.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let dev = std::fs::File::open(&node).with_path("open", &node)?;
        // SAFETY: LOOP_SET_FD takes the backing file's descriptor by value;
        // both files are open for the call. A read-only backing fd makes a
        // read-only loop device.
        unsafe { loop_set_fd(dev.as_raw_fd(), backing.as_raw_fd() as libc::c_int) }
            .with_path("LOOP_SET_FD", &node)?;
        Ok(node)
    }

    fn switch_root(&self, new_root: &Path) -> io::Result<()> {
        nix::unistd::chdir(new_root).with_path("chdir", new_root)?;
        nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .with_path("move mount onto /", new_root)?;
        nix::unistd::chroot(".").with_path("chroot", new_root)?;
        Ok(nix::unistd::chdir("/").with_path("chdir", "/")?)
    }

    fn run(&self, program: &str, args: &[&str]) -> io::Result<CmdOutput> {
        use std::os::unix::process::ExitStatusExt;
        let out = super::run::command(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()?;
        Ok(CmdOutput {
            code: out.status.code(),
            signal: out.status.signal(),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    fn run_bounded(
        &self,
        program: &str,
        args: &[&str],
        log: &Path,
        limit: std::time::Duration,
    ) -> io::Result<super::Bounded> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(log)?;
        // Its output goes to the log, never to a pipe of ours: a child it
        // forks cannot hold this call up by keeping a pipe open.
        let mut child = super::run::command(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()?;
        let group = nix::unistd::Pid::from_raw(child.id() as i32);
        let start = std::time::Instant::now();
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok(super::Bounded::Ended {
                    code: st.code(),
                    signal: st.signal(),
                });
            }
            if start.elapsed() >= limit {
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return Ok(super::Bounded::Killed);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn spawn(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> io::Result<()> {
        // Not waited for: PID 1's supervisor reaps every child.
        super::run::command(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .spawn()
            .map(drop)
    }

    fn clock_ms(&self) -> io::Result<u64> {
        let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)?;
        let ms = ts.tv_sec() as i64 * 1000 + ts.tv_nsec() as i64 / 1_000_000;
        u64::try_from(ms).map_err(|_| io::Error::other("the clock is before 1970"))
    }

    fn rtc_seconds(&self, rtc: &Path) -> io::Result<u64> {
        // The class attribute reads the hardware clock each time (no
        // exclusive open of /dev/rtc0, which would lock out hwclock).
        let path = rtc.join("since_epoch");
        let text = std::fs::read_to_string(&path).with_path("read", &path)?;
        text.trim().parse().map_err(|_| {
            io::Error::from(PathError::new(
                "parse",
                &path,
                io::Error::new(io::ErrorKind::InvalidData, "not a number of seconds"),
            ))
        })
    }

    fn set_clock(&self, unix_ms: u64) -> io::Result<()> {
        let ts = nix::sys::time::TimeSpec::new(
            (unix_ms / 1000) as _,
            ((unix_ms % 1000) * 1_000_000) as _,
        );
        nix::time::clock_settime(nix::time::ClockId::CLOCK_REALTIME, ts).map_err(io::Error::from)
    }

    fn power(&self, action: PowerAction) -> io::Result<()> {
        use nix::sys::reboot::{reboot, RebootMode};
        let mode = match action {
            PowerAction::PowerOff => RebootMode::RB_POWER_OFF,
            PowerAction::Reboot => RebootMode::RB_AUTOBOOT,
        };
        reboot(mode).map(drop).map_err(io::Error::from)
    }
}

/// `MODULE_INIT_COMPRESSED_FILE` from `<linux/module.h>` (Linux 5.17).
const MODULE_INIT_COMPRESSED_FILE: libc::c_int = 4;

fn cpath(p: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_device_size_of_a_file_is_its_length() {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(12345).unwrap();
        assert_eq!(RealSys.device_size(f.path()).unwrap(), 12345);
        let e = RealSys
            .device_size(Path::new("/nonexistent/dev"))
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/dev"));
    }
}
