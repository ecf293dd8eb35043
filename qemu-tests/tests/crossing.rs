//! End-to-end, as an ordinary user: the VM out of the way. The user's home
//! is shared at the same path (a container reads and writes it, files land
//! owned by the user, a `:ro` share refuses writes); a port published in
//! the guest answers on the host's 127.0.0.1 within 2 s and is gone within
//! 2 s of closing (`-p`, `-P`, UDP, `--network host`); the docker context
//! works with no DOCKER_* variables and goes with `b2d rm`; nothing of the
//! machine listens beyond loopback.

use qemu_tests::fixture::{b2d_bin, iso};
use qemu_tests::user::{Store, UserEnv};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const NAME: &str = "crossing";
/// Within this long of a listener appearing or closing.
const FORWARD: Duration = Duration::from_secs(2);

fn tcp_answers(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_ok()
}

/// Poll `cond` until it holds or `limit` passes; how long it took.
fn within(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    loop {
        if cond() {
            return Some(t0.elapsed());
        }
        if t0.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTP GET of `/` on 127.0.0.1:`port`: the body.
fn http_get(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r
}

/// The host agent's pid: the process whose command line is `b2d agent NAME`.
fn agent_pid() -> String {
    let found = std::fs::read_dir("/proc").unwrap().flatten().find(|p| {
        let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmd.split(|&b| b == 0).filter(|a| !a.is_empty()).collect();
        args.len() == 3
            && args[0].ends_with(b"b2d")
            && args[1] == b"agent"
            && args[2] == NAME.as_bytes()
    });
    found
        .map(|p| p.file_name().to_string_lossy().into_owned())
        .unwrap_or_else(|| panic!("no host agent runs for {NAME}"))
}

/// Whether process `pid` listens on TCP 127.0.0.1:`port`.
fn listens_tcp(pid: &str, port: u16) -> bool {
    let out = test_support::run("ss", &["-ltnpH"]);
    out.lines()
        .any(|l| l.contains(&format!("127.0.0.1:{port} ")) && l.contains(&format!("pid={pid},")))
}

/// Whether QEMU (`pid`) holds a UDP socket on 127.0.0.1:`port`.
fn qemu_udp(pid: &str, port: u16) -> bool {
    let out = test_support::run("ss", &["-lunpH"]);
    out.lines()
        .any(|l| l.contains(&format!("127.0.0.1:{port} ")) && l.contains(&format!("pid={pid},")))
}

#[test]
fn shares_ports_and_context_as_an_ordinary_user() {
    let e = UserEnv::new(
        NAME,
        Store::Beside,
        &["home/src/app", "data", "ro-share"],
        &[
            ("home/src/app/f.txt", "hello\n"),
            ("ro-share/keep.txt", "keep\n"),
        ],
    );
    let iso = iso();
    let ro = e.dir.path().join("ro-share");
    let home = e.home();
    e.b2d(&[
        "up",
        NAME,
        "--iso",
        iso.to_str().unwrap(),
        "--disk-size",
        "2G",
        "--mount",
        home.to_str().unwrap(),
        "--mount",
        &format!("{}:ro", ro.display()),
        "--timeout",
        "400",
    ]);
    let pid = std::fs::read_to_string(e.machine_dir().join("qemu.pid")).unwrap();
    let pid = pid.trim();
    let owner = std::fs::metadata(e.machine_dir().join("qemu.pid"))
        .unwrap()
        .uid();
    assert_eq!(owner, e.who.uid, "QEMU runs as the ordinary user");

    // The docker context, with no DOCKER_* variable set.
    let v = e.docker(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!v.trim().is_empty());
    let tar = test_support::busybox_image(
        e.dir.path(),
        &[
            "sh", "cat", "echo", "httpd", "sleep", "touch", "ln", "mv", "chmod", "stat", "rm", "dd",
        ],
        &[("www/index.html", "b2d-page\n")],
    );
    test_support::run("chmod", &["0644", tar.to_str().unwrap()]);
    e.docker(&["import", tar.to_str().unwrap(), "bb"]);

    // The home share at the same path: read, write, ownership.
    let app = home.join("src/app");
    let app_s = app.to_str().unwrap();
    let vol = format!("{app_s}:/w");
    assert_eq!(
        e.docker(&["run", "--rm", "-v", &vol, "bb", "cat", "/w/f.txt"]),
        "hello\n"
    );
    e.docker(&[
        "run",
        "--rm",
        "-v",
        &vol,
        "bb",
        "sh",
        "-c",
        "echo out > /w/new.txt",
    ]);
    let new = app.join("new.txt");
    assert_eq!(std::fs::read_to_string(&new).unwrap(), "out\n");
    assert_eq!(
        std::fs::metadata(&new).unwrap().uid(),
        e.who.uid,
        "owned by the user"
    );
    // Through virtiofs, the default where virtiofsd is installed (.ci/deps).
    let console = b2d::host::vm::console::read_log(&e.machine_dir().join("serial.log"));
    let line = format!(
        "host {} mounted read-write at the same path (virtiofs)",
        home.display()
    );
    assert!(console.contains(&line), "{line} not in the console");
    // Symlinks, renames, chmod, an open file deleted, a file past 4 GiB.
    let script = "set -e; cd /w; ln -s f.txt link; cat link; \
        mv new.txt renamed.txt; [ ! -e new.txt ]; chmod 0751 renamed.txt; stat -c %a renamed.txt; \
        echo gone > victim; exec 3< victim; rm victim; cat <&3; \
        dd if=/dev/zero of=big bs=1 count=1 seek=5368709120 2>/dev/null; stat -c %s big";
    assert_eq!(
        e.docker(&["run", "--rm", "-v", &vol, "bb", "sh", "-c", script]),
        "hello\n751\ngone\n5368709121\n"
    );
    assert_eq!(
        std::fs::read_link(app.join("link")).unwrap(),
        Path::new("f.txt")
    );
    let renamed = std::fs::metadata(app.join("renamed.txt")).unwrap();
    assert_eq!(renamed.permissions().mode() & 0o7777, 0o751);
    assert!(!app.join("new.txt").exists() && !app.join("victim").exists());
    assert_eq!(
        std::fs::metadata(app.join("big")).unwrap().len(),
        5368709121
    );
    std::fs::remove_file(app.join("big")).unwrap();

    // The read-only share refuses writes and still reads.
    let rov = format!("{}:/r", ro.display());
    assert_eq!(
        e.docker(&["run", "--rm", "-v", &rov, "bb", "cat", "/r/keep.txt"]),
        "keep\n"
    );
    let w = e.run(
        "docker",
        &[
            "--context",
            "b2d-crossing",
            "run",
            "--rm",
            "-v",
            &rov,
            "bb",
            "touch",
            "/r/x",
        ],
    );
    assert!(!w.status.success(), "a write to the :ro share succeeded");
    assert!(!ro.join("x").exists());

    // -p H:C answers within 2 s of `docker run` returning; gone 2 s after stop.
    let p = test_support::free_port();
    let published = format!("{p}:80");
    let c = e.docker(&[
        "run", "-d", "-p", &published, "bb", "httpd", "-f", "-p", "80", "-h", "/www",
    ]);
    let up = within(FORWARD, || tcp_answers(p));
    assert!(up.is_some(), "127.0.0.1:{p} did not answer within 2 s");
    eprintln!("-p {p}: forwarded after {:?}", up.unwrap());
    assert!(http_get(p).contains("b2d-page"));
    // TCP is the host agent's own listener, carried over the tunnel.
    let agent = agent_pid();
    assert!(
        listens_tcp(&agent, p),
        "the agent does not hold 127.0.0.1:{p}"
    );
    assert!(!listens_tcp(pid, p), "QEMU holds 127.0.0.1:{p} too");
    let ports = e.b2d(&["ports", NAME]);
    assert!(ports.contains(&format!("127.0.0.1:{p}")), "{ports}");
    e.docker(&["stop", "-t", "1", c.trim()]);
    let gone = within(FORWARD, || !tcp_answers(p));
    assert!(
        gone.is_some(),
        "127.0.0.1:{p} still open 2 s after docker stop"
    );

    // -P: the port docker chose.
    let c = e.docker(&[
        "run", "-d", "--expose", "80", "-P", "bb", "httpd", "-f", "-p", "80", "-h", "/www",
    ]);
    let port_line = e.docker(&["port", c.trim(), "80/tcp"]);
    let chosen: u16 = port_line
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("docker port: {port_line}"));
    assert!(
        within(FORWARD, || tcp_answers(chosen)).is_some(),
        "-P port {chosen}"
    );
    assert!(http_get(chosen).contains("b2d-page"));
    e.docker(&["rm", "-f", c.trim()]);

    // UDP: QEMU holds 127.0.0.1:U while the guest listens, then lets go.
    let u = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let udp = format!("{u}:5353/udp");
    let c = e.docker(&["run", "-d", "-p", &udp, "bb", "sleep", "600"]);
    assert!(
        within(FORWARD, || qemu_udp(pid, u)).is_some(),
        "udp {u} not forwarded"
    );
    e.docker(&["rm", "-f", c.trim()]);
    assert!(
        within(FORWARD, || !qemu_udp(pid, u)).is_some(),
        "udp {u} still forwarded"
    );

    // --network host: a listener on the guest's own addresses.
    let h = test_support::free_port();
    let hs = h.to_string();
    let c = e.docker(&[
        "run",
        "-d",
        "--network",
        "host",
        "bb",
        "httpd",
        "-f",
        "-p",
        &hs,
        "-h",
        "/www",
    ]);
    assert!(
        within(FORWARD, || tcp_answers(h)).is_some(),
        "--network host {h}"
    );
    assert!(http_get(h).contains("b2d-page"));
    e.docker(&["rm", "-f", c.trim()]);

    // Nothing of the machine's (QEMU, the host agent) is bound beyond
    // loopback.
    let ss = test_support::run("ss", &["-ltnupH"]);
    let mine = [format!("pid={pid},"), format!("pid={agent},")];
    for l in ss.lines().filter(|l| mine.iter().any(|m| l.contains(m))) {
        let local = l.split_whitespace().nth(4).unwrap_or_default();
        assert!(
            local.starts_with("127.0.0.1:") || local.starts_with("[::1]:"),
            "the machine listens beyond loopback: {l}"
        );
    }

    // Suspend and resume as the ordinary user: the RAM is read out of
    // QEMU's /proc/<pid>/fd and kept private; the share comes back.
    let b2d = b2d_bin();
    let b2d = b2d.to_str().unwrap();
    e.b2d(&["suspend", NAME]);
    let ram = std::fs::metadata(e.machine_dir().join("suspend.ram")).unwrap();
    assert_eq!(ram.uid(), e.who.uid);
    assert_eq!(ram.permissions().mode() & 0o777, 0o600, "suspend.ram");
    let state = std::fs::metadata(e.machine_dir().join("suspend.state")).unwrap();
    assert_eq!(state.permissions().mode() & 0o777, 0o600, "suspend.state");
    let out = e.run(b2d, &["up", NAME, "--timeout", "400"]);
    let said = test_support::assert_ok("up", &out);
    let said = format!("{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("(resume, "), "{said}");
    assert_eq!(
        e.docker(&["run", "--rm", "-v", &vol, "bb", "cat", "/w/f.txt"]),
        "hello\n"
    );

    // b2d rm takes the context with it.
    e.b2d(&["rm", "-f", NAME]);
    let gone = e.run("docker", &["context", "inspect", "b2d-crossing"]);
    assert!(!gone.status.success(), "the context outlived the machine");
}
