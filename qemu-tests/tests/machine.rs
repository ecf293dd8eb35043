//! End-to-end: the machine verbs as a user types them. `b2d up` boots the
//! real ISO in QEMU; the host's docker CLI talks to it over TLS through
//! `b2d env`; `b2d ssh` logs in with strict host key checking; a stop and
//! a second up keep the images, and a larger `--disk-size` shows in `df`.

use qemu_tests::fixture::iso;
use std::path::Path;
use std::process::Command;
use test_support::keygen;

const NAME: &str = "lifecycle";

type Store = qemu_tests::machines::Machine;

/// Size in KiB of the guest's data filesystem, from `df -k`.
fn data_fs_kib(s: &Store) -> u64 {
    let out = s.ok("df", s.b2d(&["ssh", NAME, "--", "df", "-k", "/mnt/sda1"]));
    let line = out.lines().nth(1).unwrap_or_else(|| panic!("df: {out}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A 2 GiB machine left idle after its ready line gives its memory back:
/// QEMU's RSS falls to 400 MiB or less (the guest drops its idle page
/// cache and reports free pages through the balloon).
fn assert_idle_footprint(s: &Store, pid: u64) {
    let at_ready = qemu_tests::vm::rss_mib(pid as u32);
    let t0 = std::time::Instant::now();
    let mut rss = at_ready;
    while rss > 400 && t0.elapsed() < std::time::Duration::from_secs(240) {
        std::thread::sleep(std::time::Duration::from_secs(5));
        rss = qemu_tests::vm::rss_mib(pid as u32);
    }
    let guest = s.ok(
        "guest memory",
        s.b2d(&[
            "ssh",
            NAME,
            "--",
            "grep -E '^(MemFree|Cached|AnonPages|Shmem|Slab):' /proc/meminfo",
        ]),
    );
    eprintln!(
        "QEMU RSS {at_ready} MiB at ready, {rss} MiB after {:.0} s idle; guest:\n{guest}",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        rss <= 400,
        "QEMU RSS still {rss} MiB; guest:\n{guest}\n{}",
        s.serial_tail()
    );
    let log = b2d::host::console::read_log(&s.machine_dir().join("serial.log"));
    assert!(
        log.contains("memory: idle; dropped the page cache"),
        "{}",
        s.serial_tail()
    );
}

#[test]
fn up_env_docker_ssh_stop_up_grow_rm() {
    let s = Store::new(NAME);
    let iso = iso();
    let iso = iso.to_str().unwrap();

    // First up: creates and boots, and says what to type next.
    let out = s.ok(
        "first up",
        s.b2d(&[
            "up",
            NAME,
            "--iso",
            iso,
            "--disk-size",
            "2G",
            "--timeout",
            "400",
        ]),
    );
    assert!(
        out.contains(&format!("env {NAME})\"")),
        "no env hint in:\n{out}"
    );
    assert!(
        out.contains(&format!("ssh {NAME}")),
        "no ssh hint in:\n{out}"
    );
    let st = s.status();
    assert_eq!(st["state"], "Running", "{st}");
    assert_eq!(st["persistent"], true, "{st}");
    // Where the boot's time went, slowest first.
    let boot = s.ok(
        "status --boot",
        s.b2d(&["status", NAME, "--boot", "--json"]),
    );
    let boot: serde_json::Value = serde_json::from_str(&boot).unwrap();
    let phases = boot["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 11, "{boot}");
    let ms: Vec<u64> = phases.iter().map(|p| p["ms"].as_u64().unwrap()).collect();
    assert!(ms.windows(2).all(|w| w[0] >= w[1]), "{boot}");
    assert_eq!(boot["not_answering"], serde_json::json!([]), "{boot}");
    let text = s.ok("status --boot", s.b2d(&["status", NAME, "--boot"]));
    assert!(text.starts_with(&format!("{NAME}: ready ")), "{text}");
    eprintln!("boot phases:\n{text}");
    assert_eq!(st["guest_ip"][0], "10.0.2.15", "{st}");
    let pid = st["pid"].as_u64().unwrap();
    assert_idle_footprint(&s, pid);
    let port = st["docker_host"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();

    // The real docker CLI through `b2d env`, and a locally made image.
    let tar = test_support::busybox_image(s.dir.path(), &["sh", "echo", "cat", "df"], &[]);
    let out = s.ok(
        "docker through b2d env",
        s.bash(&format!(
            "eval \"$(\"$B2D\" env {NAME})\"\n\
             [ \"$DOCKER_MACHINE_NAME\" = {NAME} ]\n\
             docker version --format 'server {{{{.Server.Version}}}}'\n\
             docker import -c 'ENV PATH=/bin' {} b2d-test/busybox:1 >/dev/null\n\
             docker run --rm b2d-test/busybox:1 echo hello from busybox",
            tar.display()
        )),
    );
    assert!(out.contains("server "), "{out}");
    assert!(out.contains("hello from busybox"), "{out}");

    // TLS: the machine's client certificate is needed; plain HTTP is not TLS.
    let certs = s.machine_dir().join("certs");
    let url = format!("https://127.0.0.1:{port}/_ping");
    let cacert = certs.join("ca.pem");
    let curl = |extra: &[&str], url: &str| {
        let mut c = Command::new("curl");
        c.args([
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            cacert.to_str().unwrap(),
        ])
        .args(extra)
        .arg(url);
        c.output().unwrap()
    };
    let no_cert = s.fails("curl without a client certificate", curl(&[], &url));
    assert!(
        no_cert.contains("alert") || no_cert.contains("certificate"),
        "{no_cert}"
    );
    let with_cert = curl(
        &[
            "--cert",
            certs.join("cert.pem").to_str().unwrap(),
            "--key",
            certs.join("key.pem").to_str().unwrap(),
        ],
        &url,
    );
    assert_eq!(s.ok("curl with the client certificate", with_cert), "OK");
    let plain = curl(&[], &format!("http://127.0.0.1:{port}/_ping"));
    assert_ne!(
        String::from_utf8_lossy(&plain.stdout),
        "OK",
        "plain HTTP answered"
    );

    // ssh with the pinned host key, and refused when known_hosts disagrees.
    let ps = s.ok(
        "b2d ssh docker ps",
        s.b2d(&["ssh", NAME, "--", "docker", "ps"]),
    );
    assert!(ps.contains("CONTAINER ID"), "{ps}");
    let kh = s.machine_dir().join("known_hosts");
    let good = std::fs::read_to_string(&kh).unwrap();
    let other = keygen(s.dir.path());
    let other_pub = other.public_line();
    let alias = good.split_whitespace().next().unwrap();
    let key = other_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(&kh, format!("{alias} {key}\n")).unwrap();
    let e = s.fails(
        "ssh with a wrong host key",
        s.b2d(&["ssh", NAME, "--", "true"]),
    );
    assert!(e.contains("Host key verification failed"), "{e}");
    std::fs::write(&kh, good).unwrap();
    let kib_before = data_fs_kib(&s);

    // A second up of a running machine is a no-op.
    let out = s.ok("second up", s.b2d(&["up", NAME]));
    assert!(out.contains("already running"), "{out}");
    assert_eq!(s.status()["pid"].as_u64(), Some(pid));
    let ls = s.ok("ls", s.b2d(&["ls", "--json"]));
    assert!(ls.contains(&format!("\"name\": \"{NAME}\"")), "{ls}");
    let logs = s.ok("logs", s.b2d(&["logs", NAME]));
    assert!(logs.contains("b2d-ready "), "no ready line in the logs");

    // ACPI power-down, not a kill.
    let out = s.b2d(&["stop", NAME]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    s.ok("stop", out);
    assert!(
        said.contains(&format!("{NAME:?} stopped.")),
        "not a clean power-off: {said}"
    );
    let st = s.status();
    assert_eq!(st["state"], "Stopped", "{st}");
    let stop_said = String::from_utf8_lossy(&s.b2d(&["stop", NAME]).stderr).into_owned();
    assert!(stop_said.contains("is not running"), "{stop_said}");
    let e = s.fails("env of a stopped machine", s.b2d(&["env", NAME]));
    assert!(e.contains("is not running"), "{e}");
    let e = s.fails("rm without -f and no terminal", s.b2d(&["rm", NAME]));
    assert!(e.contains("pass -f"), "{e}");

    // Up again with a larger disk: images kept, filesystem grown.
    let out = s.b2d(&["up", NAME, "--disk-size", "3G", "--timeout", "400"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    s.ok("up with a larger disk", out);
    assert!(said.contains("disk grown from 2 GiB to 3 GiB"), "{said}");
    let out = s.ok(
        "images after a restart",
        s.bash(&format!(
            "eval \"$(\"$B2D\" env {NAME})\"\n\
             docker run --rm b2d-test/busybox:1 echo still here"
        )),
    );
    assert!(out.contains("still here"), "{out}");
    let kib_after = data_fs_kib(&s);
    assert!(
        kib_after > kib_before + 900 * 1024,
        "data filesystem did not grow by ~1 GiB: {kib_before} KiB -> {kib_after} KiB"
    );

    // rm: a running machine needs -f, which kills it and removes it all.
    let e = s.fails("rm of a running machine", s.b2d(&["rm", NAME]));
    assert!(e.contains("is running"), "{e}");
    let pid = s.status()["pid"].as_u64().unwrap();
    s.ok("rm -f", s.b2d(&["rm", "-f", NAME]));
    assert!(!s.machine_dir().exists());
    assert!(
        !Path::new(&format!("/proc/{pid}/cmdline")).exists() || {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .is_empty()
        }
    );
    let e = s.fails("status of a removed machine", s.b2d(&["status", NAME]));
    assert!(e.contains(&format!("no machine named \"{NAME}\"")), "{e}");
}
