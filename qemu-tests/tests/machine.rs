//! End-to-end: the machine verbs as a user types them. `b2d up` boots the
//! real ISO in QEMU; the host's docker CLI talks to it over TLS through
//! `b2d env`; `b2d ssh` logs in with strict host key checking; a stop and
//! a second up keep the images, and a larger `--disk-size` shows in `df`.
//! A guest that floods its console or names a listener with escape
//! sequences costs the host a bounded log and shows printable.

use qemu_tests::fixture::iso;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
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
    let log = b2d::host::vm::console::read_log(&s.machine_dir().join("serial.log"));
    assert!(
        log.contains("memory: idle; dropped the page cache"),
        "{}",
        s.serial_tail()
    );
}

/// `b2d ARGS` must answer within 2 s, whatever the guest is doing.
fn quick(s: &Store, args: &[&str]) -> std::process::Output {
    let t0 = Instant::now();
    let out = s.b2d(args);
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "`b2d {}` took {took:?}",
        args.join(" ")
    );
    assert!(out.status.success(), "`b2d {}`: {out:?}", args.join(" "));
    out
}

fn has_esc(b: &[u8]) -> bool {
    b.contains(&0x1b) || String::from_utf8_lossy(b).contains('\u{9b}')
}

/// A guest that floods its console keeps `serial.log` at or under the
/// cap (sampled every 10 ms throughout), `b2d status` answers within 2 s
/// and still reads the boot, and `b2d logs` shows the latest lines. A
/// listener whose name holds escape sequences, and escape sequences on
/// the console, reach `b2d ports` and `b2d logs` printable.
fn assert_guest_output_bounded_and_printable(s: &Store) {
    let cap = b2d::host::vm::console::LOG_CAP;
    let serial = s.machine_dir().join("serial.log");
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (serial, done) = (serial.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut largest, mut samples) = (0, 0u32);
            while !done.load(Ordering::SeqCst) {
                largest = largest.max(std::fs::metadata(&serial).map_or(0, |m| m.len()));
                samples += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            (largest, samples)
        })
    };
    // About 7 MiB of numbered lines, then escape sequences.
    const LINES: u32 = 100_000;
    let flood = format!(
        "sudo awk 'BEGIN {{ for (i = 1; i <= {LINES}; i++) \
         printf \"flood %08d ..................................................\\n\", i > \"/dev/ttyS0\"; \
         printf \"evil \\033]0;title\\007 \\033[2J \\233 done\\n\" > \"/dev/ttyS0\" }}'"
    );
    let t0 = Instant::now();
    let flooding = {
        let mut c = std::process::Command::new(qemu_tests::fixture::b2d_bin());
        c.args(["ssh", NAME, "--", &flood]);
        s.env(&mut c);
        c.spawn().unwrap()
    };
    let flooding = Arc::new(std::sync::Mutex::new(flooding));
    let still = || flooding.lock().unwrap().try_wait().unwrap().is_none();
    let mut asked = 0;
    while still() {
        let st: serde_json::Value =
            serde_json::from_slice(&quick(s, &["status", NAME, "--json"]).stdout).unwrap();
        assert_eq!(st["state"], "Running", "{st}");
        asked += 1;
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the flood never ended"
        );
    }
    let flood_took = t0.elapsed();
    assert!(
        flooding.lock().unwrap().wait().unwrap().success(),
        "the flood failed"
    );
    // The console lags what the guest wrote: wait for its last line.
    let last = format!("flood {LINES:08} ");
    let t1 = Instant::now();
    while !b2d::host::vm::console::read_log(&serial).contains(" done") {
        assert!(t1.elapsed() < Duration::from_secs(30), "{}", s.evidence());
        std::thread::sleep(Duration::from_millis(200));
    }
    done.store(true, Ordering::SeqCst);
    let (largest, samples) = sampler.join().unwrap();
    let agent = std::fs::read_to_string(s.machine_dir().join("agent.log")).unwrap();
    let rotations = agent.matches("console log rotated: ").count();
    eprintln!(
        "console flood: {LINES} lines in {flood_took:?}; serial.log at most {largest} bytes \
         over {samples} samples (cap {cap}); {rotations} rotations; status asked {asked} times"
    );
    assert!(
        largest <= cap,
        "serial.log reached {largest} bytes (cap {cap})"
    );
    assert!(rotations >= 3, "{rotations} rotations:\n{agent}");
    assert!(asked >= 3, "status asked {asked} times during the flood");
    // Still read as this boot, after the rotations.
    let st = s.status();
    assert_eq!(st["state"], "Running", "{st}");
    assert_eq!(st["guest_ip"][0], "10.0.2.15", "{st}");
    quick(s, &["status", NAME, "--boot"]);
    let logs = quick(s, &["logs", NAME]);
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains(&last), "no {last:?} in b2d logs");
    assert!(!has_esc(&logs.stdout), "raw escape in b2d logs");
    assert!(
        text.contains("evil \\x1b]0;title\\x07 \\x1b[2J"),
        "{}",
        b2d::host::vm::console::tail(&text, 5)
    );

    // A listener named with escape sequences.
    let port = test_support::free_port();
    let listen = format!(
        "sudo sh -c 'f=\"/tmp/$(printf \"busybox\\033[31mX\")\"; cp /usr/bin/busybox \"$f\"; \
         setsid \"$f\" nc -l -p {port} </dev/null >/dev/null 2>&1 &'"
    );
    s.ok(
        "a listener named with escapes",
        s.b2d(&["ssh", NAME, "--", &listen]),
    );
    let t2 = Instant::now();
    let ports = loop {
        let out = quick(s, &["ports", NAME]);
        if String::from_utf8_lossy(&out.stdout).contains(&format!("127.0.0.1:{port} ")) {
            break out;
        }
        assert!(
            t2.elapsed() < Duration::from_secs(10),
            "{port} not forwarded:\n{}",
            s.evidence()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let text = String::from_utf8_lossy(&ports.stdout);
    assert!(!has_esc(&ports.stdout), "raw escape in b2d ports:\n{text}");
    assert!(text.contains("busybox\\x1b[31mX"), "{text}");
    let json = quick(s, &["ports", NAME, "--json"]);
    assert!(!has_esc(&json.stdout), "raw escape in b2d ports --json");
    let logs = quick(s, &["logs", NAME]);
    assert!(!has_esc(&logs.stdout), "raw escape in b2d logs");
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(
        text.contains(&format!("to the guest's {port} (busybox\\x1b[31mX)")),
        "{}",
        b2d::host::vm::console::tail(&text, 10)
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
    assert_guest_output_bounded_and_printable(&s);

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
