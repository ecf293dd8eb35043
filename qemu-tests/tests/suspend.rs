//! End-to-end: `b2d suspend` and the `b2d up` that resumes. A container
//! keeps running across a suspend, with its volume, its published port
//! and the home share; the clock is right again. A suspended machine
//! given new memory is resumed, shut down cleanly and booted cold; one
//! whose saved RAM is damaged boots cold with its data intact; `b2d
//! stop` of a suspended one is a clean shutdown. The RAM is saved sparse
//! and a resume loads only what the guest used.

use qemu_tests::fixture::iso;
use qemu_tests::machines::Machine;
use std::io::Read;
use std::time::{Duration, Instant};

const NAME: &str = "suspend";
/// The published port (a fixed one: the test owns this host's loopback).
const PORT: u16 = 18093;

fn docker(s: &Machine, script: &str) -> String {
    s.ok(
        script,
        s.bash(&format!("eval \"$(\"$B2D\" env {NAME})\"\n{script}",)),
    )
}

/// `b2d up` that must succeed; its stderr.
fn up(s: &Machine, args: &[&str]) -> String {
    let mut a = vec!["up", NAME, "--timeout", "400"];
    a.extend(args);
    s.said("up", s.b2d(&a))
}

fn suspend(s: &Machine) {
    let said = s.said("suspend", s.b2d(&["suspend", NAME]));
    assert!(
        said.contains(&format!("Machine {NAME:?} suspended in")),
        "{said}"
    );
    assert_eq!(s.status()["state"], "Suspended");
    let size = |f: &str| std::fs::metadata(s.machine_dir().join(f)).unwrap();
    use std::os::unix::fs::MetadataExt;
    let (state, ram) = (size("suspend.state"), size("suspend.ram"));
    eprintln!(
        "saved: devices {} KiB, RAM {} MiB on disk of {} MiB",
        state.len() >> 10,
        (ram.blocks() * 512) >> 20,
        ram.len() >> 20
    );
    let memory = s.status()["memory_mib"].as_u64().unwrap();
    assert_eq!(ram.len(), memory << 20, "the RAM file spans all of the RAM");
    assert!(
        ram.blocks() * 512 < ram.len() / 2,
        "the RAM file is sparse: {} bytes on disk",
        ram.blocks() * 512
    );
}

/// What the published port answers, tried for up to 10 s.
fn port_answer() -> String {
    let start = Instant::now();
    loop {
        let got = std::net::TcpStream::connect(("127.0.0.1", PORT)).and_then(|mut c| {
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut s = String::new();
            c.read_to_string(&mut s)?;
            Ok(s)
        });
        match got {
            Ok(s) if !s.is_empty() => return s,
            _ if start.elapsed() > Duration::from_secs(10) => {
                panic!("nothing on 127.0.0.1:{PORT}: {got:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[test]
fn suspend_resume_and_the_cold_boots_it_falls_back_to() {
    let s = Machine::new(NAME);
    let iso = iso();
    let home = s.dir.home();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("shared.txt"), "from the host\n").unwrap();
    up(&s, &["--iso", iso.to_str().unwrap(), "--disk-size", "2G"]);
    let tar = test_support::busybox_image(s.dir.path(), &["sh", "echo", "cat", "sleep", "nc"], &[]);
    let id = docker(
        &s,
        &format!(
            "docker import -c 'ENV PATH=/bin' {} bb >/dev/null\n\
             docker run -d --name keeper -v data:/data -p {PORT}:80 bb \
               sh -c 'echo kept > /data/f; while true; do echo hello | nc -l -p 80; done'",
            tar.display()
        ),
    );
    let id = id.trim().to_string();
    assert_eq!(port_answer(), "hello\n");

    // Suspend, then resume: the same container runs on.
    suspend(&s);
    let t0 = Instant::now();
    let said = up(&s, &[]);
    let ps = docker(&s, "docker ps --no-trunc --format '{{.ID}} {{.Names}}'");
    let wall = t0.elapsed().as_secs_f64();
    eprintln!("up + docker ps after a suspend: {wall:.1} s\n{said}");
    assert!(said.contains("(resume, "), "{said}");
    assert!(!said.contains("not resumed"), "{said}");
    assert!(ps.contains(&format!("{id} keeper")), "{ps}");
    assert_eq!(docker(&s, "docker exec keeper cat /data/f"), "kept\n");
    assert_eq!(port_answer(), "hello\n");
    let shared = docker(
        &s,
        &format!(
            "docker run --rm -v {}:/h bb cat /h/shared.txt",
            home.display()
        ),
    );
    assert_eq!(shared, "from the host\n");
    let guest_clock: i64 = s
        .ok("date", s.b2d(&["ssh", NAME, "--", "date", "+%s"]))
        .trim()
        .parse()
        .unwrap();
    let host_clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (guest_clock - host_clock).abs() <= 5,
        "guest clock {guest_clock}, host {host_clock}"
    );
    let log = b2d::host::vm::console::read_log(&s.machine_dir().join("serial.log"));
    assert!(
        log.contains("control: clock stepped "),
        "{}",
        s.serial_tail()
    );
    qemu_tests::fixture::assert_no_debug(&log);
    // The lease is renewed a few seconds after the resume (udhcpc says so
    // on the console), and the guest keeps its address and its forwards.
    let serial = s.machine_dir().join("serial.log");
    let start = Instant::now();
    while !b2d::host::vm::console::read_log(&serial).contains("udhcpc: lease of 10.0.2.15 obtained")
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no lease renewal after the resume:\n{}",
            s.serial_tail()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(port_answer(), "hello\n");
    // The resume loaded only the pages the guest uses: QEMU holds about
    // that, not all of the 2 GiB (the RAM is a shared memfd, which a
    // migration stream would have touched page by page).
    let pid = s.status()["pid"].as_u64().unwrap() as u32;
    let rss = qemu_tests::vm::rss_mib(pid);
    eprintln!("QEMU RSS after the resume: {rss} MiB");
    assert!(rss <= 800, "QEMU RSS {rss} MiB after the resume");

    // New memory for a suspended machine: resumed, shut down, booted cold.
    suspend(&s);
    let said = up(&s, &["--memory", "1536"]);
    assert!(
        said.contains(
            "resumed with its old settings and shut down, to boot cold with --memory 1536M"
        ),
        "{said}"
    );
    assert!(!said.contains("killed"), "{said}");
    assert!(said.contains("(boot, "), "{said}");
    assert_eq!(s.status()["memory_mib"], 1536);
    let log = b2d::host::vm::console::read_log(&s.machine_dir().join("serial.log.1"));
    assert!(
        log.contains("shutdown requested"),
        "not a clean shutdown:\n{}",
        b2d::host::vm::console::tail(&log, 20)
    );
    assert_eq!(
        docker(&s, "docker run --rm -v data:/data bb cat /data/f"),
        "kept\n"
    );

    // A damaged RAM file (one byte where the kernel's text is): a cold
    // boot from the disk, data intact.
    suspend(&s);
    let state = s.machine_dir().join("suspend.state");
    let ram = s.machine_dir().join("suspend.ram");
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&ram)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, 17 << 20).unwrap();
        f.write_all_at(&[b[0] ^ 0xff], 17 << 20).unwrap();
    }
    let said = up(&s, &[]);
    assert!(said.contains("not resumed: "), "{said}");
    assert!(said.contains("suspend.ram"), "{said}");
    assert!(said.contains("SHA-256"), "{said}");
    assert!(said.contains("(boot, "), "{said}");
    assert!(!state.exists());
    assert!(!ram.exists());
    assert_eq!(
        docker(&s, "docker run --rm -v data:/data bb cat /data/f"),
        "kept\n"
    );

    // `b2d stop` of a suspended machine shuts it down cleanly.
    suspend(&s);
    let said = s.said("stop", s.b2d(&["stop", NAME]));
    assert!(
        said.contains(&format!("Machine {NAME:?} stopped.")),
        "{said}"
    );
    assert_eq!(s.status()["state"], "Stopped");
}
