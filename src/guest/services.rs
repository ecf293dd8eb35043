//! The services b2d runs (boot step 7) and the bootsync/bootlocal hooks.

use super::profile::Profile;
use super::supervisor::{Output, Restart, Service};
use crate::sys::{Bounded, Sys};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Extension point for the TLS step: when set, dockerd also listens on
/// `tcp` with `--tlsverify` and these files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsArgs {
    pub tcp: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn sshd_argv(keys: &[PathBuf]) -> Vec<String> {
    let mut v: Vec<String> = ["/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for k in keys {
        v.push("-h".into());
        v.push(k.display().to_string());
    }
    v
}

/// containerd's configuration on the ISO (the paths dockerd would give
/// the containerd it manages).
pub const CONTAINERD_CONFIG: &str = "/etc/b2d/containerd.toml";
/// Where that containerd listens.
pub const CONTAINERD_SOCK: &str = "/var/run/docker/containerd/containerd.sock";

/// containerd, started by the agent beside dockerd: it loads while
/// dockerd does, instead of after dockerd's own start-up.
pub fn containerd_argv() -> Vec<String> {
    ["containerd", "--config", CONTAINERD_CONFIG]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// dockerd on the unix socket, with the agent's containerd, plus TLS/tcp
/// when configured, plus the profile's EXTRA_ARGS (a malformed
/// EXTRA_ARGS is logged and ignored).
pub fn dockerd_argv(profile: &Profile, tls: Option<&TlsArgs>) -> Vec<String> {
    let mut v: Vec<String> = [
        "dockerd",
        "-H",
        "unix:///var/run/docker.sock",
        &format!("--containerd={CONTAINERD_SOCK}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(t) = tls {
        v.extend([
            "-H".into(),
            t.tcp.clone(),
            "--tlsverify".into(),
            format!("--tlscacert={}", t.ca.display()),
            format!("--tlscert={}", t.cert.display()),
            format!("--tlskey={}", t.key.display()),
        ]);
    }
    match profile.extra_args() {
        Ok(a) => v.extend(a),
        Err(e) => log::warn!("profile EXTRA_ARGS ignored: {e}"),
    }
    v
}

/// The tty behind /dev/console: the last entry of
/// `sys/class/tty/console/active` (e.g. `tty0 ttyS0` → `ttyS0`).
pub fn console_tty(sys_root: &Path) -> String {
    std::fs::read_to_string(sys_root.join("class/tty/console/active"))
        .ok()
        .and_then(|s| s.split_whitespace().last().map(str::to_string))
        .unwrap_or_else(|| "console".into())
}

/// A root shell (b2d.shell) or a login prompt on the console.
pub fn getty_argv(shell: bool, tty: &str) -> Vec<String> {
    let v: &[&str] = if shell {
        // cttyhack opens the real console tty as the controlling terminal.
        &["busybox", "cttyhack", "/bin/sh", "-l"]
    } else {
        &["busybox", "getty", "115200", tty]
    };
    v.iter().map(|s| s.to_string()).collect()
}

/// What the service list depends on.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// `/var/lib/boot2docker` (for log/ and bootlocal.sh).
    pub state_dir: &'a Path,
    pub host_keys: &'a [PathBuf],
    pub profile: &'a Profile,
    pub shell: bool,
    pub tty: String,
    pub tls: Option<&'a TlsArgs>,
    /// dockerd's environment from the engine settings.
    pub docker_env: &'a [(String, String)],
}

/// sshd, containerd, dockerd, bootlocal.sh (one-shot, if present), getty
/// — in start order; shutdown stops them in reverse.
pub fn build(i: &Inputs) -> Vec<Service> {
    let log_dir = i.state_dir.join("log");
    let base_env = vec![("PATH".to_string(), PATH.to_string())];
    let mut out = Vec::new();

    let mut sshd = Service::new("sshd", &[], Restart::Always);
    sshd.argv = sshd_argv(i.host_keys);
    sshd.env = base_env.clone();
    sshd.output = Output::File(log_dir.join("sshd.log"));
    sshd.stop_timeout = Duration::from_secs(5);
    out.push(sshd);

    let mut containerd = Service::new("containerd", &[], Restart::Always);
    containerd.argv = containerd_argv();
    containerd.env = base_env.clone();
    containerd.output = Output::File(log_dir.join("containerd.log"));
    // After dockerd (stopped first): its containers' shims are told first.
    containerd.stop_timeout = Duration::from_secs(10);
    out.push(containerd);

    let mut dockerd = Service::new("dockerd", &[], Restart::Always);
    dockerd.argv = dockerd_argv(i.profile, i.tls);
    dockerd.env = base_env.clone();
    // The root is an initramfs: pivot_root is impossible there.
    dockerd.env.push(("DOCKER_RAMDISK".into(), "true".into()));
    // The engine settings' (never PATH or DOCKER_RAMDISK: see
    // crate::wire::engine::Engine::usable).
    dockerd.env.extend(i.docker_env.iter().cloned());
    dockerd.output = Output::File(log_dir.join("docker.log"));
    dockerd.stop_timeout = Duration::from_secs(20);
    out.push(dockerd);

    let bootlocal = i.state_dir.join("bootlocal.sh");
    if bootlocal.is_file() {
        let mut s = Service::new("bootlocal", &[], Restart::Never);
        s.argv = vec!["/bin/sh".into(), bootlocal.display().to_string()];
        s.env = base_env.clone();
        s.output = Output::File(log_dir.join("bootlocal.log"));
        s.stop_timeout = Duration::from_secs(5);
        out.push(s);
    }

    let mut getty = Service::new("getty", &[], Restart::Always);
    getty.argv = getty_argv(i.shell, &i.tty);
    getty.env = base_env;
    getty.env.push(("TERM".into(), "linux".into()));
    getty.stop_timeout = Duration::from_secs(2);
    out.push(getty);
    out
}

/// Run `state_dir/bootsync.sh` (if present) before dockerd, for at most
/// `timeout`, its output in `log/bootsync.log`. A hook that hangs is
/// killed with all it started and the boot goes on; every outcome but
/// success is logged, in words.
pub fn run_bootsync(sys: &dyn Sys, state_dir: &Path, timeout: Duration) {
    let script = state_dir.join("bootsync.sh");
    if !script.is_file() {
        return;
    }
    let secs = timeout.as_secs().max(1);
    let path = script.display().to_string();
    let log = state_dir.join("log/bootsync.log");
    log::info!(
        "running {path} (timeout {secs}s, its output in {})",
        log.display()
    );
    let ended = sys.run_bounded("/bin/sh", &[&path], &log, Duration::from_secs(secs));
    match ended {
        Ok(Bounded::Ended {
            code: Some(0), ..
        }) => log::info!("{path} done"),
        Ok(Bounded::Ended {
            code: Some(code), ..
        }) => log::warn!("bootsync failed: {path} ended with exit code {code}; the boot goes on"),
        Ok(Bounded::Ended { signal, .. }) => log::warn!(
            "bootsync failed: {path} was killed by signal {}; the boot goes on",
            signal.unwrap_or(0)
        ),
        Ok(Bounded::Killed) => log::warn!(
            "bootsync failed: {path} did not finish in {secs}s; it and what it started were killed; the boot goes on"
        ),
        Err(e) => log::warn!("bootsync failed: cannot run {path}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    #[test]
    fn service_list_and_argvs() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("bootlocal.sh"), "echo hi\n").unwrap();
        let profile = super::super::profile::parse("EXTRA_ARGS='--label a=b --debug'\n");
        let keys = vec![PathBuf::from("/k/ed"), PathBuf::from("/k/ec")];
        let tls = TlsArgs {
            tcp: "tcp://0.0.0.0:2376".into(),
            ca: "/t/ca.pem".into(),
            cert: "/t/cert.pem".into(),
            key: "/t/key.pem".into(),
        };
        let s = build(&Inputs {
            state_dir: d.path(),
            host_keys: &keys,
            profile: &profile,
            shell: false,
            tty: "ttyS0".into(),
            tls: Some(&tls),
            docker_env: &[("HTTP_PROXY".into(), "http://10.0.2.2:3128".into())],
        });
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["sshd", "containerd", "dockerd", "bootlocal", "getty"]
        );
        assert_eq!(
            s[0].argv.join(" "),
            "/usr/sbin/sshd -D -e -f /etc/ssh/sshd_config -h /k/ed -h /k/ec"
        );
        assert_eq!(
            s[1].argv.join(" "),
            "containerd --config /etc/b2d/containerd.toml"
        );
        assert_eq!(
            s[2].argv.join(" "),
            "dockerd -H unix:///var/run/docker.sock \
             --containerd=/var/run/docker/containerd/containerd.sock \
             -H tcp://0.0.0.0:2376 --tlsverify \
             --tlscacert=/t/ca.pem --tlscert=/t/cert.pem --tlskey=/t/key.pem --label a=b --debug"
        );
        assert!(s[2].env.contains(&("DOCKER_RAMDISK".into(), "true".into())));
        assert!(s[2]
            .env
            .contains(&("HTTP_PROXY".into(), "http://10.0.2.2:3128".into())));
        assert!(!s[1].env.iter().any(|(k, _)| k == "HTTP_PROXY"));
        assert_eq!(s[3].restart, Restart::Never);
        assert_eq!(s[4].argv.join(" "), "busybox getty 115200 ttyS0");
        assert_eq!(
            getty_argv(true, "x").join(" "),
            "busybox cttyhack /bin/sh -l"
        );
    }

    #[test]
    fn console_tty_and_bootsync() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(console_tty(d.path()), "console");
        let a = d.path().join("class/tty/console");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::write(a.join("active"), "tty0 ttyS0\n").unwrap();
        assert_eq!(console_tty(d.path()), "ttyS0");

        let sys = FakeSys::new();
        run_bootsync(&sys, d.path(), Duration::from_secs(60));
        assert!(sys.calls().is_empty());
        std::fs::write(d.path().join("bootsync.sh"), "true\n").unwrap();
        run_bootsync(&sys, d.path(), Duration::from_secs(60));
        assert_eq!(
            sys.calls(),
            vec![format!(
                "run_bounded 60s /bin/sh {0}/bootsync.sh >> {0}/log/bootsync.log",
                d.path().display()
            )]
        );
    }

    /// The real runner: a hook that hangs with a child of its own holding
    /// its output is killed, child and all, at the limit.
    #[test]
    fn a_hook_that_hangs_is_killed_with_what_it_started() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("hook.log");
        let marker = d.path().join("child.pid");
        let script = format!(
            "sleep 300 & echo $! > {}; echo started; wait",
            marker.display()
        );
        let t0 = std::time::Instant::now();
        let ended = crate::sys::RealSys
            .run_bounded(
                "/bin/sh",
                &["-c", &script],
                &log,
                Duration::from_millis(700),
            )
            .unwrap();
        assert_eq!(ended, Bounded::Killed);
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        let child: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed with the group (a zombie until reaped counts as gone).
        // SIGKILL to a group is delivered as each member next runs: the
        // orphaned child may still be runnable for a moment, not alive.
        let gone = || {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            (stat.is_empty() || stat.contains(") Z "))
                .then_some(())
                .ok_or(stat)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while gone().is_err() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(stat) = gone() {
            panic!("the hook's child outlived the kill: {stat}");
        }
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "started\n");
        // One that ends in time says how.
        let ended = crate::sys::RealSys
            .run_bounded("/bin/sh", &["-c", "exit 3"], &log, Duration::from_secs(5))
            .unwrap();
        assert_eq!(
            ended,
            Bounded::Ended {
                code: Some(3),
                signal: None
            }
        );
    }
}
