//! Faults while a machine runs: its services killed, dockerd in a crash
//! loop, the data disk full, boot hooks that misbehave, and a run of
//! clean reboots.

use super::{docker, up};
use crate::machines::Machine;
use std::time::{Duration, Instant};

fn ssh(m: &Machine, cmd: &str) -> String {
    m.ok(cmd, m.b2d(&["ssh", m.name, "--", cmd]))
}

/// Poll `f` every 500 ms for up to `limit`; the time it took.
fn within(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < limit,
            "{what}: not within {}s",
            limit.as_secs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    t0.elapsed()
}

/// The Docker API answers (`docker version` gets the server's).
fn docker_answers(m: &Machine) -> bool {
    m.bash(&format!(
        "eval \"$(\"$B2D\" env {})\"; docker version --format '{{{{.Server.Version}}}}'",
        m.name
    ))
    .status
    .success()
}

/// `kill -9` each service in the guest: the supervisor starts it again,
/// Docker answers again within 30 s, and `b2d logs` shows the restart
/// with its backoff. Returns how many kills were recovered.
pub fn kills(m: &Machine) -> usize {
    let mut recovered = 0;
    for service in ["dockerd", "containerd", "sshd"] {
        let before = ssh(m, &format!("pidof {service}"));
        // sshd: the listener only (each session is an sshd-session).
        ssh(m, &format!("sudo pkill -9 -x {service}"));
        let took = within(
            Duration::from_secs(30),
            &format!("{service} back after kill -9"),
            || match service {
                "sshd" => m.b2d(&["ssh", m.name, "--", "true"]).status.success(),
                // dockerd answers without containerd: a container needs it.
                "containerd" => m
                    .bash(&format!(
                        "eval \"$(\"$B2D\" env {})\"; docker run --rm bb true",
                        m.name
                    ))
                    .status
                    .success(),
                _ => docker_answers(m),
            },
        );
        let after = ssh(m, &format!("pidof {service}"));
        assert_ne!(before.trim(), after.trim(), "{service} has the same pid");
        // And it runs containers again.
        assert_eq!(docker(m, "docker run --rm bb echo ran").trim(), "ran");
        let logs = m.ok("logs", m.b2d(&["logs", m.name]));
        assert!(
            logs.lines()
                .any(|l| l.contains(&format!("service {service} (pid "))
                    && l.contains("killed by SIGKILL; restart in")),
            "no restart of {service} in b2d logs:\n{}",
            b2d::host::vm::console::tail(&logs, 30)
        );
        eprintln!(
            "kill -9 {service}: answering again after {:.1} s",
            took.as_secs_f64()
        );
        recovered += 1;
    }
    recovered
}

/// dockerd given a bad option through the profile: the machine stays
/// up, ssh works, and `b2d status` says dockerd is failing, in dockerd's
/// own words. The profile is put right afterwards.
pub fn crash_loop(m: &Machine) {
    ssh(
        m,
        "echo \"EXTRA_ARGS='--no-such-option'\" | sudo tee -a /var/lib/boot2docker/profile >/dev/null",
    );
    m.ok("stop", m.b2d(&["stop", m.name]));
    // The boot ends without Docker: `up` says so, and why.
    let out = m.b2d(&["up", m.name, "--timeout", "400"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let logged_in = m.b2d(&["ssh", m.name, "--", "echo up"]);
    let st = m.b2d(&["status", m.name]);
    let st = String::from_utf8_lossy(&st.stdout).into_owned();
    // Put right before anything is asserted: the cases after this one
    // use the same machine.
    ssh(
        m,
        "sudo sed -i '/no-such-option/d' /var/lib/boot2docker/profile",
    );
    m.ok("stop", m.b2d(&["stop", m.name]));
    up(m);
    assert!(
        !out.status.success(),
        "up succeeded with dockerd failing:\n{said}"
    );
    // dockerd's own words (it says `Status: unknown flag: …`).
    let words = "unknown flag: --no-such-option";
    assert!(
        said.contains("dockerd said: ") && said.contains(words),
        "{said}"
    );
    assert_eq!(String::from_utf8_lossy(&logged_in.stdout).trim(), "up");
    assert!(
        st.contains("not answering: dockerd said: ") && st.contains(words),
        "{st}"
    );
}

/// Fill the data disk: Docker reports ENOSPC, ssh and the agent keep
/// working; after freeing space and a reboot all is normal.
pub fn disk_full(m: &Machine) {
    let fill = m.bash(&format!(
        "eval \"$(\"$B2D\" env {})\"; docker run --rm -v data:/data bb \
         dd if=/dev/zero of=/data/fill bs=1M 2>&1 | tail -n 3",
        m.name
    ));
    let said = String::from_utf8_lossy(&fill.stdout);
    assert!(said.contains("No space left on device"), "{said}");
    let df = ssh(m, "df -P /mnt/sda1 | tail -n 1");
    let avail: u64 = df
        .split_whitespace()
        .nth(3)
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(avail < 1024, "the disk is not full: {df}");
    // Docker says so in its own words; ssh and the agent work on.
    let run = m.bash(&format!(
        "eval \"$(\"$B2D\" env {})\"; docker run --rm -v data:/data bb sh -c 'echo x > /data/more' 2>&1",
        m.name
    ));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(said.contains("No space left on device"), "{said}");
    assert_eq!(ssh(m, "echo still").trim(), "still");
    let st = m.status();
    assert_eq!(st["state"], "Running", "{st}");
    // A reboot with the disk full still gives a shell.
    m.ok("stop", m.b2d(&["stop", m.name]));
    let _ = m.b2d(&["up", m.name, "--timeout", "400"]);
    assert_eq!(ssh(m, "echo booted").trim(), "booted");
    // Room again: everything is normal after the next boot.
    ssh(m, "sudo rm -f /var/lib/docker/volumes/data/_data/fill");
    m.ok("stop", m.b2d(&["stop", m.name]));
    up(m);
    assert_eq!(docker(m, "docker run --rm bb echo fine").trim(), "fine");
}

/// A `bootsync.sh` that hangs, then one that fails, and a `bootlocal.sh`
/// that leaves a daemon behind: each boot goes on, and the console says
/// what happened.
pub fn hooks(m: &Machine) {
    let state = "/var/lib/boot2docker";
    ssh(
        m,
        &format!("echo 'sleep 100000' | sudo tee {state}/bootsync.sh >/dev/null"),
    );
    m.ok("stop", m.b2d(&["stop", m.name]));
    up(m);
    let log = b2d::host::vm::console::read_log(&m.machine_dir().join("serial.log"));
    assert!(log.contains("bootsync failed"), "{}", m.serial_tail());
    ssh(
        m,
        &format!("echo 'exit 3' | sudo tee {state}/bootsync.sh >/dev/null"),
    );
    ssh(
        m,
        &format!(
            "printf 'sleep 100000 &\\necho forked\\n' | sudo tee {state}/bootlocal.sh >/dev/null"
        ),
    );
    m.ok("stop", m.b2d(&["stop", m.name]));
    up(m);
    let log = b2d::host::vm::console::read_log(&m.machine_dir().join("serial.log"));
    assert!(log.contains("bootsync failed"), "{}", m.serial_tail());
    assert!(
        log.contains("exit status 3") || log.contains("exit code 3"),
        "{}",
        m.serial_tail()
    );
    within(Duration::from_secs(30), "bootlocal's daemon", || {
        m.b2d(&["ssh", m.name, "--", "pgrep -f 'sleep 100000'"])
            .status
            .success()
    });
    ssh(
        m,
        &format!("sudo rm -f {state}/bootsync.sh {state}/bootlocal.sh"),
    );
    // The daemon does not hold the shutdown up.
    let t0 = Instant::now();
    m.ok("stop", m.b2d(&["stop", m.name]));
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "stop took {:?}",
        t0.elapsed()
    );
    up(m);
}

/// `cycles` clean reboots: a volume's checksum and a stored image
/// survive each. Returns how many were done.
pub fn soak(m: &Machine, cycles: usize) -> usize {
    docker(
        m,
        "docker run --rm -v soak:/s bb sh -c 'yes soak | head -c 3000000 > /s/f; sync'",
    );
    let sum = || docker(m, "docker run --rm -v soak:/s bb md5sum /s/f");
    let first = sum();
    for i in 0..cycles {
        m.ok("stop", m.b2d(&["stop", m.name]));
        up(m);
        assert_eq!(sum(), first, "volume changed after reboot {}", i + 1);
    }
    cycles
}
