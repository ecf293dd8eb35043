//! End-to-end: the engine settings and the verbs around a machine.
//!
//! `engine_settings_reach_dockerd_and_change_on_a_stopped_machine`: a
//! registry mirror, an insecure registry and a label given as flags show
//! in `docker info`; a `--daemon-json` setting is in daemon.json; a proxy
//! on the host's 127.0.0.1 passed with `--proxy-from-env` is in dockerd's
//! `/proc/PID/environ` as 10.0.2.2; a `--ca-cert` is in the guest's CA
//! bundle. Settings changed on the stopped machine show after the next
//! `up`; a setting dockerd refuses shows in `b2d up` and `b2d status` in
//! dockerd's own words without a hanging boot, and `--engine-opt none`
//! mends it.
//!
//! `clock_ssh_config_cp_restart_kill`: the VM paused with QMP `stop` for
//! 60 s and resumed with `cont` has the host's time again (within 2 s)
//! within 5 s; `ssh -F FILE b2d-NAME`, FILE from `b2d ssh-config NAME`, logs in with
//! strict host key checking (and is refused with a wrong host key);
//! `b2d cp` copies a directory in and out; `b2d restart` keeps the data;
//! `b2d url` and `b2d inspect` agree with `b2d status`; `b2d kill` stops
//! it at once.

use qemu_tests::fixture::iso;
use qemu_tests::machines::Machine;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `b2d ssh NAME -- SCRIPT` that must succeed: its stdout.
fn guest(s: &Machine, script: &str) -> String {
    s.ok(script, s.b2d(&["ssh", s.name, "--", script]))
}

fn up(s: &Machine, args: &[&str], vars: &[(&str, &str)]) -> String {
    let mut a = vec!["up", s.name, "--timeout", "400", "--mount", "none"];
    a.extend(args);
    s.said("up", s.b2d_env(&a, vars))
}

fn stop(s: &Machine) {
    let said = s.said("stop", s.b2d(&["stop", s.name]));
    assert!(said.contains("stopped."), "{said}");
}

/// The base64 body of a PEM certificate, on one line.
fn pem_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

#[test]
fn engine_settings_reach_dockerd_and_change_on_a_stopped_machine() {
    let s = Machine::new("engine");
    let iso = iso();
    let ca = b2d::tls::new_ca("corp proxy", time::OffsetDateTime::now_utc()).unwrap();
    let ca_file = s.dir.path().join("corp-ca.pem");
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    let daemon = s.dir.path().join("daemon.json");
    std::fs::write(&daemon, r#"{"max-concurrent-downloads": 5}"#).unwrap();
    let proxies = [
        ("HTTP_PROXY", "http://127.0.0.1:3128"),
        ("HTTPS_PROXY", "http://localhost:3129"),
        ("NO_PROXY", "localhost,.corp.example"),
        ("http_proxy", ""),
        ("https_proxy", ""),
        ("no_proxy", ""),
    ];
    up(
        &s,
        &[
            "--iso",
            iso.to_str().unwrap(),
            "--disk-size",
            "2G",
            "--registry-mirror",
            "https://mirror.example.com",
            "--insecure-registry",
            "registry.local:5000",
            "--engine-label",
            "b2d.test=engine",
            "--daemon-json",
            daemon.to_str().unwrap(),
            "--proxy-from-env",
            "--ca-cert",
            ca_file.to_str().unwrap(),
        ],
        &proxies,
    );

    let info = guest(&s, "docker info");
    for want in [
        "https://mirror.example.com",
        "registry.local:5000",
        "b2d.test=engine",
    ] {
        assert!(info.contains(want), "{want} not in docker info:\n{info}");
    }
    let json = guest(&s, "cat /etc/docker/daemon.json");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["max-concurrent-downloads"], 5, "{json}");
    assert!(json.get("hosts").is_none(), "{json}");

    let environ = guest(
        &s,
        "sudo cat /proc/$(cat /var/run/docker.pid)/environ | tr '\\0' '\\n'",
    );
    let vars: Vec<&str> = environ.lines().collect();
    for want in [
        "HTTP_PROXY=http://10.0.2.2:3128",
        "HTTPS_PROXY=http://10.0.2.2:3129",
        "NO_PROXY=10.0.2.2,.corp.example",
    ] {
        assert!(
            vars.contains(&want),
            "{want} not in dockerd's environment:\n{environ}"
        );
    }
    assert!(!environ.contains("127.0.0.1:3128"), "{environ}");

    let bundle = guest(&s, "cat /etc/ssl/certs/ca-certificates.crt").replace('\n', "");
    assert!(
        bundle.contains(&pem_body(&ca.cert_pem)),
        "the --ca-cert is not in the guest's CA bundle"
    );
    let local = guest(&s, "cat /usr/local/share/ca-certificates/b2d-1.crt");
    assert_eq!(pem_body(&local), pem_body(&ca.cert_pem));
    let log = b2d::host::vm::console::read_log(&s.machine_dir().join("serial.log"));
    assert!(
        log.contains("engine: 1 CA certificate(s) added to /etc/ssl/certs/ca-certificates.crt"),
        "{}",
        s.serial_tail()
    );
    qemu_tests::fixture::assert_no_debug(&log);
    let mirrors = s.ok(
        "inspect",
        s.b2d(&[
            "inspect",
            s.name,
            "--format",
            "{{json .Engine.RegistryMirrors}}",
        ]),
    );
    assert_eq!(mirrors.trim(), "[\"https://mirror.example.com\"]");

    // Changed on the stopped machine: shows after the next up; what was
    // not given stays.
    stop(&s);
    up(
        &s,
        &[
            "--registry-mirror",
            "https://other-mirror.example.com",
            "--engine-label",
            "none",
        ],
        &[],
    );
    let info = guest(&s, "docker info");
    assert!(info.contains("https://other-mirror.example.com"), "{info}");
    assert!(!info.contains("https://mirror.example.com"), "{info}");
    assert!(!info.contains("b2d.test=engine"), "{info}");
    assert!(info.contains("registry.local:5000"), "{info}");

    // A setting dockerd itself refuses: `up` says so in dockerd's words
    // instead of waiting for it, and so does `status`.
    stop(&s);
    let t0 = Instant::now();
    let e = s.fails(
        "up with a storage driver dockerd does not have",
        s.b2d(&[
            "up",
            s.name,
            "--timeout",
            "400",
            "--engine-opt",
            "storage-driver=nosuchdriver",
        ]),
    );
    eprintln!(
        "up with a refused setting gave up after {:.0} s",
        t0.elapsed().as_secs_f64()
    );
    assert!(e.contains("did not answer: dockerd said: "), "{e}");
    assert!(e.contains("nosuchdriver"), "{e}");
    let log = b2d::host::vm::console::read_log(&s.machine_dir().join("serial.log"));
    assert!(
        log.contains("times without answering; the boot goes on without it"),
        "the ready line waited for dockerd:\n{}",
        s.serial_tail()
    );
    let st = s.status();
    assert_eq!(st["state"], "Running", "{st}");
    assert_eq!(st["docker"], false, "{st}");
    assert!(
        st["docker_said"].as_str().unwrap().contains("nosuchdriver"),
        "{st}"
    );
    let text = s.ok("status", s.b2d(&["status", s.name]));
    assert!(
        text.contains("Docker      not answering: dockerd said: "),
        "{text}"
    );

    // What to type instead: the option taken back on the stopped machine.
    stop(&s);
    up(&s, &["--engine-opt", "none"], &[]);
    assert!(guest(&s, "docker info").contains("registry.local:5000"));
}

/// `SECS YYYY-MM-DD HH:MM:SS.NNNNNNNNN +0000` (stat's `%Y %y`) as
/// seconds since the epoch.
fn guest_time(line: &str) -> Option<f64> {
    let mut w = line.split_whitespace();
    let secs: f64 = w.next()?.parse().ok()?;
    let frac = w.nth(1)?.split_once('.')?.1;
    Some(secs + format!("0.{frac}").parse::<f64>().ok()?)
}

/// Seconds since the epoch, as a float.
fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Pause the VM with QMP `stop` for 60 s and `cont`; a guest loop
/// printing `date` every 0.2 s over ssh shows when its clock is right
/// again. Each line is (host time it arrived, guest time it says).
fn pause_and_resume(s: &Machine, ssh_config: &std::path::Path) {
    let alias = format!("b2d-{}", s.name);
    // No keepalives: the guest answers none while it is paused.
    let mut child = Command::new("ssh")
        .args([
            "-F",
            ssh_config.to_str().unwrap(),
            "-o",
            "ServerAliveInterval=0",
        ])
        .arg(&alias)
        // busybox date has no %N: a file just touched carries the clock
        // to the nanosecond (`%Y` its seconds, `%y` the fraction).
        .arg("while :; do touch /tmp/clock; stat -c '%Y %y' /tmp/clock; sleep 0.2; done")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(f64, f64)>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if let Some(g) = guest_time(&line) {
                if tx.send((now_s(), g)).is_err() {
                    return;
                }
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the guest's clock loop");
    eprintln!(
        "before the pause: guest - host = {:+.3} s",
        first.1 - first.0
    );
    assert!((first.1 - first.0).abs() < 2.0, "{first:?}");

    let qmp_sock = s.machine_dir().join("qmp.sock");
    let mut qmp = b2d::host::vm::qmp::Qmp::connect(&qmp_sock, Duration::from_secs(10)).unwrap();
    qmp.execute("stop", None).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    while rx.try_recv().is_ok() {}
    qmp.execute("cont", None).unwrap();
    let resumed = now_s();
    drop(qmp);

    let mut lines = Vec::new();
    while now_s() < resumed + 15.0 {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
            lines.push(l);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let shown: Vec<String> = lines
        .iter()
        .map(|(h, g)| {
            format!(
                "+{:.1} s after cont: guest - host = {:+.3} s",
                h - resumed,
                g - h
            )
        })
        .collect();
    eprintln!("{}", shown.join("\n"));
    let right = lines
        .iter()
        .position(|(h, g)| (g - h).abs() <= 2.0)
        .unwrap_or_else(|| {
            panic!(
                "the clock never came right:\n{}\n{}",
                shown.join("\n"),
                s.serial_tail()
            )
        });
    assert!(
        lines[right].0 - resumed <= 5.0,
        "right only {:.1} s after cont:\n{}",
        lines[right].0 - resumed,
        shown.join("\n")
    );
    for (h, g) in &lines[right..] {
        assert!((g - h).abs() <= 2.0, "wrong again:\n{}", shown.join("\n"));
    }
    // It was wrong after the resume, and the agent's step set it right
    // (with a clock source that ran on through the pause there is no
    // step to see).
    if right > 0 {
        let log = b2d::host::vm::console::read_log(&s.machine_dir().join("serial.log"));
        assert!(log.contains("clock: stepped "), "{}", s.serial_tail());
    }
}

#[test]
fn clock_ssh_config_cp_restart_kill() {
    let s = Machine::new("tools");
    let iso = iso();
    up(
        &s,
        &["--iso", iso.to_str().unwrap(), "--disk-size", "2G"],
        &[],
    );

    // ssh-config: plain OpenSSH with strict host key checking.
    let config = s.dir.path().join("ssh_config");
    let block = s.ok("ssh-config", s.b2d(&["ssh-config", s.name]));
    std::fs::write(&config, &block).unwrap();
    // From a file, as in ~/.ssh/config: OpenSSH closes every descriptor
    // above stderr before it reads -F, so `-F <(…)` cannot work.
    let out = s.ok(
        "ssh -F ssh_config",
        s.bash(&format!(
            "ssh -F {} b2d-{n} true && echo logged-in",
            config.display(),
            n = s.name
        )),
    );
    assert_eq!(out.trim(), "logged-in");
    let out = s.ok(
        "b2d ssh-config | ssh -F /dev/stdin",
        s.bash(&format!(
            "\"$B2D\" ssh-config {n} | ssh -F /dev/stdin b2d-{n} echo piped",
            n = s.name
        )),
    );
    assert_eq!(out.trim(), "piped");
    let kh = s.machine_dir().join("known_hosts");
    let good = std::fs::read_to_string(&kh).unwrap();
    let other = test_support::keygen(s.dir.path()).public_line();
    let key: Vec<&str> = other.split_whitespace().take(2).collect();
    std::fs::write(&kh, format!("b2d-{} {}\n", s.name, key.join(" "))).unwrap();
    let e = s.fails(
        "ssh with a wrong host key",
        s.bash(&format!(
            "ssh -F {} b2d-{n} true",
            config.display(),
            n = s.name
        )),
    );
    assert!(e.contains("Host key verification failed"), "{e}");
    std::fs::write(&kh, good).unwrap();

    // The clock after a 60 s pause.
    pause_and_resume(&s, &config);

    // cp: a directory in, changed in the guest, and back out.
    let src = s.dir.path().join("tree");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("top.txt"), "top\n").unwrap();
    std::fs::write(src.join("sub/deeper/leaf.txt"), "leaf\n").unwrap();
    let to = format!("{}:/home/docker/", s.name);
    s.ok("cp in", s.b2d(&["cp", src.to_str().unwrap(), &to]));
    assert_eq!(
        guest(&s, "cat /home/docker/tree/sub/deeper/leaf.txt"),
        "leaf\n"
    );
    guest(&s, "echo from the guest > /home/docker/tree/sub/new.txt");
    let back = s.dir.path().join("back");
    let from = format!("{}:/home/docker/tree", s.name);
    s.ok("cp out", s.b2d(&["cp", &from, back.to_str().unwrap()]));
    assert_eq!(
        std::fs::read_to_string(back.join("top.txt")).unwrap(),
        "top\n"
    );
    assert_eq!(
        std::fs::read_to_string(back.join("sub/deeper/leaf.txt")).unwrap(),
        "leaf\n"
    );
    assert_eq!(
        std::fs::read_to_string(back.join("sub/new.txt")).unwrap(),
        "from the guest\n"
    );

    // url and inspect agree with status.
    let st = s.status();
    let url = s.ok("url", s.b2d(&["url", s.name]));
    assert_eq!(url.trim(), st["docker_host"].as_str().unwrap());
    let inspect: serde_json::Value =
        serde_json::from_str(&s.ok("inspect", s.b2d(&["inspect", s.name]))).unwrap();
    assert_eq!(inspect["state"], "Running");
    assert_eq!(inspect["pid"], st["pid"]);
    assert_eq!(inspect["ssh_port"], st["ssh_port"]);

    // restart: a new boot of the same disk, the data kept.
    guest(&s, "docker volume create b2d-keep");
    let boot_id = guest(&s, "cat /proc/sys/kernel/random/boot_id");
    let said = s.said("restart", s.b2d(&["restart", s.name, "--timeout", "400"]));
    assert!(
        said.contains(&format!("Machine {:?} stopped.", s.name)),
        "{said}"
    );
    assert!(said.contains("(boot, "), "{said}");
    assert_ne!(guest(&s, "cat /proc/sys/kernel/random/boot_id"), boot_id);
    assert!(guest(&s, "docker volume ls -q")
        .lines()
        .any(|l| l == "b2d-keep"));
    assert_eq!(guest(&s, "cat /home/docker/tree/top.txt"), "top\n");

    // kill: at once, no power button.
    let pid = s.status()["pid"].as_u64().unwrap();
    let said = s.said("kill", s.b2d(&["kill", s.name]));
    assert!(
        said.contains(&format!("Machine {:?} killed (QEMU pid {pid}).", s.name)),
        "{said}"
    );
    assert_eq!(s.status()["state"], "Stopped");
    let log = b2d::host::vm::console::read_log(&s.machine_dir().join("serial.log"));
    assert!(
        !log.contains("shutdown requested"),
        "a kill is no clean shutdown"
    );
}

#[test]
fn a_touched_files_time_reads_to_the_nanosecond() {
    let t = guest_time("1796548103 2026-12-06 09:08:23.395994282 +0000").unwrap();
    assert!((t - 1_796_548_103.396).abs() < 1e-3, "{t}");
    assert_eq!(guest_time("1796548103.%N"), None);
}
