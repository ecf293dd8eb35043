//! The recording fake of the [`Sys`] seam, for unit tests only: every
//! call is kept as a typed [`Call`], and succeeds unless a failure was
//! scripted.

use super::{CmdOutput, MsFlags, PowerAction, Sys};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One recorded call, with its arguments as the agent passed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<String>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Umount {
        target: PathBuf,
        detach: bool,
    },
    Mknod {
        path: PathBuf,
        block: bool,
        mode: u32,
        major: u64,
        minor: u64,
    },
    FinitModule {
        file: PathBuf,
        params: String,
    },
    Sethostname(String),
    Swapon(PathBuf),
    Swapoff(PathBuf),
    Sync,
    DeviceSize(PathBuf),
    RereadPartitions(PathBuf),
    AddPartition {
        dev: PathBuf,
        number: u32,
        start: u64,
        len: u64,
    },
    LoopAttach(PathBuf),
    SwitchRoot(PathBuf),
    Run {
        program: String,
        args: Vec<String>,
    },
    Spawn {
        program: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    },
    RunBounded {
        program: String,
        args: Vec<String>,
        log: PathBuf,
        limit_s: u64,
    },
    ClockRead,
    RtcRead(PathBuf),
    SetClock(u64),
    Power(PowerAction),
}

fn flag_names(flags: MsFlags) -> String {
    if flags.is_empty() {
        return "-".into();
    }
    let names: Vec<String> = flags
        .iter_names()
        .map(|(n, _)| n.trim_start_matches("MS_").to_ascii_lowercase())
        .collect();
    names.join("|")
}

/// One line a call, for compact assertions and failure scripting:
/// `mount proc /proc proc nosuid|nodev|noexec -`, `run blkid -p /dev/sda`.
impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let line = match self {
            Call::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => format!(
                "mount {} {} {} {} {}",
                source.as_deref().unwrap_or("-"),
                target.display(),
                fstype.as_deref().unwrap_or("-"),
                flag_names(*flags),
                data.as_deref().unwrap_or("-")
            ),
            Call::Umount { target, detach } => {
                let how = if *detach { " detach" } else { "" };
                format!("umount {}{how}", target.display())
            }
            Call::Mknod {
                path,
                block,
                mode,
                major,
                minor,
            } => {
                let k = if *block { 'b' } else { 'c' };
                format!("mknod {} {k} {mode:o} {major}:{minor}", path.display())
            }
            Call::FinitModule { file, params } => {
                format!("finit_module {} {params}", file.display())
            }
            Call::Sethostname(name) => format!("sethostname {name}"),
            Call::Swapon(dev) => format!("swapon {}", dev.display()),
            Call::Swapoff(dev) => format!("swapoff {}", dev.display()),
            Call::Sync => "sync".into(),
            Call::DeviceSize(dev) => format!("device_size {}", dev.display()),
            Call::RereadPartitions(dev) => format!("reread_partitions {}", dev.display()),
            Call::AddPartition {
                dev,
                number,
                start,
                len,
            } => format!("add_partition {} {number} {start} {len}", dev.display()),
            Call::LoopAttach(file) => format!("loop_attach {}", file.display()),
            Call::SwitchRoot(root) => format!("switch_root {}", root.display()),
            Call::Run { program, args } => format!("run {program} {}", args.join(" ")),
            Call::Spawn { program, args, env } => {
                let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
                format!("spawn {}{program} {}", env.concat(), args.join(" "))
            }
            Call::RunBounded {
                program,
                args,
                log,
                limit_s,
            } => format!(
                "run_bounded {limit_s}s {program} {} >> {}",
                args.join(" "),
                log.display()
            ),
            Call::ClockRead => "clock_ms".into(),
            Call::RtcRead(rtc) => format!("rtc_seconds {}", rtc.display()),
            Call::SetClock(ms) => format!("set_clock {ms}"),
            Call::Power(action) => format!("power {action:?}"),
        };
        f.write_str(line.trim_end())
    }
}

/// A recording fake: every call is kept as a [`Call`] and succeeds unless
/// a failure was scripted with [`FakeSys::fail_on`].
#[derive(Debug, Default)]
pub struct FakeSys {
    calls: Mutex<Vec<Call>>,
    failures: Mutex<Vec<(String, Failure)>>,
    sizes: Mutex<Vec<(PathBuf, u64)>>,
    outputs: Mutex<Vec<(String, CmdOutput)>>,
    clocks: Mutex<Option<Clocks>>,
    /// The directories `/proc/self/fd/N` mount targets named when mounted.
    through_fds: Mutex<Vec<PathBuf>>,
}

/// The fake's two clocks: the system's, and the true time the RTC
/// counts (in whole seconds).
#[derive(Debug, Clone, Copy)]
struct Clocks {
    system_ms: u64,
    true_ms: u64,
}

/// A scripted failure: an error of some kind, or the kernel's errno.
#[derive(Debug, Clone, Copy)]
enum Failure {
    Kind(io::ErrorKind),
    Errno(i32),
}

impl FakeSys {
    pub fn new() -> Self {
        Self::default()
    }
    /// Fail every call whose line ([`Call`]'s Display) starts with `prefix`.
    pub fn fail_on(&self, prefix: &str, kind: io::ErrorKind) {
        self.failures
            .lock()
            .unwrap()
            .push((prefix.to_string(), Failure::Kind(kind)));
    }
    /// Fail those calls as the kernel would, with `errno` (e.g. ENODEV).
    pub fn fail_on_errno(&self, prefix: &str, errno: i32) {
        self.failures
            .lock()
            .unwrap()
            .push((prefix.to_string(), Failure::Errno(errno)));
    }
    /// Answer `device_size(dev)` with `size`.
    pub fn set_size(&self, dev: &Path, size: u64) {
        self.sizes.lock().unwrap().push((dev.to_path_buf(), size));
    }
    /// Answer `run` calls whose line starts with `prefix` with `out`.
    pub fn set_output(&self, prefix: &str, out: CmdOutput) {
        self.outputs.lock().unwrap().push((prefix.to_string(), out));
    }
    /// Give the fake a system clock at `system_ms` and an RTC counting
    /// the true time `true_ms` (without them `clock_ms` is the real
    /// clock and there is no RTC).
    pub fn set_clocks(&self, system_ms: u64, true_ms: u64) {
        *self.clocks.lock().unwrap() = Some(Clocks { system_ms, true_ms });
    }
    /// Time passes for both clocks.
    pub fn advance(&self, d: std::time::Duration) {
        if let Some(c) = self.clocks.lock().unwrap().as_mut() {
            c.system_ms += d.as_millis() as u64;
            c.true_ms += d.as_millis() as u64;
        }
    }
    /// The fake's system clock, ms.
    pub fn system_ms(&self) -> Option<u64> {
        self.clocks.lock().unwrap().map(|c| c.system_ms)
    }
    /// The directory each mount onto a `/proc/self/fd/N` target reached
    /// (read when the mount was made, while the descriptor was open), in
    /// order.
    pub fn mounted_through_fds(&self) -> Vec<PathBuf> {
        self.through_fds.lock().unwrap().clone()
    }
    /// The calls so far, typed.
    pub fn typed_calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    /// The calls so far, one line each.
    pub fn calls(&self) -> Vec<String> {
        self.typed_calls().iter().map(Call::to_string).collect()
    }
    fn record(&self, call: Call) -> io::Result<()> {
        let line = call.to_string();
        let fail = self
            .failures
            .lock()
            .unwrap()
            .iter()
            .find(|(p, _)| line.starts_with(p.as_str()))
            .map(|(_, k)| *k);
        self.calls.lock().unwrap().push(call);
        match fail {
            Some(Failure::Kind(kind)) => {
                Err(io::Error::new(kind, format!("scripted failure: {line}")))
            }
            Some(Failure::Errno(n)) => Err(io::Error::from_raw_os_error(n)),
            None => Ok(()),
        }
    }
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

impl Sys for FakeSys {
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        if target.starts_with("/proc/self/fd") {
            let dir = std::fs::read_link(target)?;
            self.through_fds.lock().unwrap().push(dir);
        }
        self.record(Call::Mount {
            source: owned(source),
            target: target.to_path_buf(),
            fstype: owned(fstype),
            flags,
            data: owned(data),
        })
    }
    fn umount(&self, target: &Path, detach: bool) -> io::Result<()> {
        self.record(Call::Umount {
            target: target.to_path_buf(),
            detach,
        })
    }
    fn mknod(&self, path: &Path, block: bool, mode: u32, major: u64, minor: u64) -> io::Result<()> {
        self.record(Call::Mknod {
            path: path.to_path_buf(),
            block,
            mode,
            major,
            minor,
        })
    }
    fn finit_module(&self, file: &Path, params: &str) -> io::Result<()> {
        self.record(Call::FinitModule {
            file: file.to_path_buf(),
            params: params.to_string(),
        })
    }
    fn sethostname(&self, name: &str) -> io::Result<()> {
        self.record(Call::Sethostname(name.to_string()))
    }
    fn swapon(&self, dev: &Path) -> io::Result<()> {
        self.record(Call::Swapon(dev.to_path_buf()))
    }
    fn swapoff(&self, dev: &Path) -> io::Result<()> {
        self.record(Call::Swapoff(dev.to_path_buf()))
    }
    fn sync(&self) {
        let _ = self.record(Call::Sync);
    }
    fn device_size(&self, dev: &Path) -> io::Result<u64> {
        self.record(Call::DeviceSize(dev.to_path_buf()))?;
        let known = self
            .sizes
            .lock()
            .unwrap()
            .iter()
            .find(|(p, _)| p == dev)
            .map(|(_, s)| *s);
        match known {
            Some(s) => Ok(s),
            None => std::fs::metadata(dev).map(|m| m.len()),
        }
    }
    fn reread_partitions(&self, dev: &Path) -> io::Result<()> {
        // Wrapped as the real one wraps it, so callers look through it.
        use crate::errors::WithPath;
        Ok(self
            .record(Call::RereadPartitions(dev.to_path_buf()))
            .with_path("BLKRRPART", dev)?)
    }
    fn add_partition(&self, dev: &Path, number: u32, start: u64, len: u64) -> io::Result<()> {
        self.record(Call::AddPartition {
            dev: dev.to_path_buf(),
            number,
            start,
            len,
        })
    }
    fn loop_attach(&self, file: &Path) -> io::Result<PathBuf> {
        self.record(Call::LoopAttach(file.to_path_buf()))?;
        Ok(PathBuf::from("/dev/loop0"))
    }
    fn switch_root(&self, new_root: &Path) -> io::Result<()> {
        self.record(Call::SwitchRoot(new_root.to_path_buf()))
    }
    fn run_bounded(
        &self,
        program: &str,
        args: &[&str],
        log: &Path,
        limit: std::time::Duration,
    ) -> io::Result<super::Bounded> {
        self.record(Call::RunBounded {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            log: log.to_path_buf(),
            limit_s: limit.as_secs(),
        })?;
        Ok(super::Bounded::Ended {
            code: Some(0),
            signal: None,
        })
    }
    fn spawn(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> io::Result<()> {
        self.record(Call::Spawn {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }
    fn clock_ms(&self) -> io::Result<u64> {
        self.record(Call::ClockRead)?;
        match *self.clocks.lock().unwrap() {
            Some(c) => Ok(c.system_ms),
            None => Ok(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)),
        }
    }
    fn rtc_seconds(&self, rtc: &Path) -> io::Result<u64> {
        self.record(Call::RtcRead(rtc.to_path_buf()))?;
        match *self.clocks.lock().unwrap() {
            Some(c) => Ok(c.true_ms / 1000),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no RTC in the fake",
            )),
        }
    }
    fn set_clock(&self, unix_ms: u64) -> io::Result<()> {
        self.record(Call::SetClock(unix_ms))?;
        if let Some(c) = self.clocks.lock().unwrap().as_mut() {
            c.system_ms = unix_ms;
        }
        Ok(())
    }
    fn run(&self, program: &str, args: &[&str]) -> io::Result<CmdOutput> {
        let call = Call::Run {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        let line = call.to_string();
        self.record(call)?;
        let out = self
            .outputs
            .lock()
            .unwrap()
            .iter()
            .find(|(p, _)| line.starts_with(p.as_str()))
            .map(|(_, o)| o.clone());
        Ok(out.unwrap_or(CmdOutput {
            code: Some(0),
            ..Default::default()
        }))
    }
    fn power(&self, action: PowerAction) -> io::Result<()> {
        self.record(Call::Power(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_records_in_order_and_scripts_failures() {
        let s = FakeSys::new();
        s.fail_on("mount /dev/sda1", io::ErrorKind::InvalidInput);
        s.mount(
            Some("proc"),
            Path::new("/proc"),
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            None,
        )
        .unwrap();
        let e = s
            .mount(
                Some("/dev/sda1"),
                Path::new("/mnt/sda1"),
                Some("ext4"),
                MsFlags::empty(),
                None,
            )
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        s.set_output(
            "run blkid",
            CmdOutput {
                code: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(s.run("blkid", &["-p"]).unwrap().code, Some(2));
        assert_eq!(
            s.typed_calls()[0],
            Call::Mount {
                source: Some("proc".into()),
                target: "/proc".into(),
                fstype: Some("proc".into()),
                flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                data: None,
            }
        );
        assert_eq!(
            s.calls(),
            vec![
                "mount proc /proc proc nosuid|nodev -",
                "mount /dev/sda1 /mnt/sda1 ext4 - -",
                "run blkid -p",
            ]
        );
    }
}
