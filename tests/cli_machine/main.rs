//! The machine verbs' misuse errors, as a user meets them, without booting
//! anything: unknown machine, bad name, missing or wrong ISO, missing
//! QEMU, a port in use, a stopped machine, a disk asked to shrink. None of
//! them may leave a machine behind or touch an existing one's disk.

mod engine;
mod swarm;
mod verbs;

use b2d::host::store::create::{create, NewMachine};
use b2d::host::store::{Config, Store};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use test_support::MachineStore;

const B2D: &str = env!("CARGO_BIN_EXE_b2d");

struct Env {
    dir: MachineStore,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: MachineStore::new(),
        }
    }

    fn store(&self) -> Store {
        Store {
            root: self.dir.root(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.dir.command(B2D);
        c.args(args)
            .env("B2D_ACCEL", "tcg")
            .env_remove("B2D_QEMU")
            .current_dir(self.dir.path());
        c
    }

    /// `b2d ARGS` with a QEMU that exists (never reached in these tests
    /// unless said so).
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .env("B2D_QEMU", "/bin/false")
            .output()
            .unwrap()
    }

    fn fake_iso(&self) -> PathBuf {
        let p = self.dir.path().join("fake.iso");
        let mut v = vec![0u8; 0x8800];
        v[0x8000..0x8006].copy_from_slice(b"\x01CD001");
        std::fs::write(&p, v).unwrap();
        p
    }

    /// A stopped machine made through the library.
    fn stopped_machine(&self, name: &str) -> PathBuf {
        let m = create(
            &self.store(),
            &NewMachine {
                name: name.into(),
                iso: self.fake_iso(),
                config: Config {
                    cpus: 1,
                    memory_mib: 1024,
                    disk_size: 2 << 30,
                    ssh_port: 40022,
                    docker_port: 40376,
                    mounts: None,
                    mount_type: None,
                    engine: Default::default(),
                    network: None,
                    swarm: None,
                },
                extra_keys: vec![],
                engine: Default::default(),
            },
        )
        .unwrap();
        m.dir
    }

    fn no_machines(&self) {
        assert_eq!(
            self.dir.entries(),
            0,
            "a failed command left something in the store"
        );
    }
}

/// The disk's length and its first MiB (magic and userdata).
fn head(disk: &std::path::Path) -> (u64, Vec<u8>) {
    use std::io::Read;
    let f = std::fs::File::open(disk).unwrap();
    let len = f.metadata().unwrap().len();
    let mut v = Vec::new();
    f.take(1 << 20).read_to_end(&mut v).unwrap();
    (len, v)
}

fn stderr(out: &Output) -> String {
    test_support::assert_fails("b2d", out)
}

fn stdout(out: &Output) -> String {
    test_support::assert_ok("b2d", out)
}

#[test]
fn unknown_machine_and_bad_name() {
    let e = Env::new();
    for verb in [
        "status",
        "env",
        "ssh",
        "stop",
        "suspend",
        "logs",
        "ip",
        "rm",
        "restart",
        "kill",
        "inspect",
        "url",
        "ssh-config",
    ] {
        let msg = stderr(&e.run(&[verb, "nope"]));
        assert!(msg.contains("no machine named \"nope\""), "{verb}: {msg}");
        assert!(msg.contains("b2d up nope"), "{verb}: {msg}");
    }
    let msg = stderr(&e.run(&["up", "a.b"]));
    assert!(msg.contains("\"a.b\" is not a valid machine name"), "{msg}");
    assert_eq!(stdout(&e.run(&["ls"])).lines().count(), 1, "header only");
    assert_eq!(stdout(&e.run(&["ls", "--json"])).trim(), "[]");
    e.no_machines();
}

#[test]
fn missing_qemu_names_the_packages() {
    let e = Env::new();
    let out = e
        .cmd(&["up", "--iso", e.fake_iso().to_str().unwrap()])
        .env("B2D_QEMU", "/nonexistent/qemu-system-x86_64")
        .output()
        .unwrap();
    let msg = stderr(&out);
    assert!(
        msg.contains("/nonexistent/qemu-system-x86_64 not found"),
        "{msg}"
    );
    assert!(
        msg.contains("apt-get install qemu-system-x86 qemu-utils"),
        "{msg}"
    );
    let out = e.cmd(&["up"]).env("PATH", "/nonexistent").output().unwrap();
    let msg = stderr(&out);
    assert!(msg.contains("qemu-system-x86_64 not found"), "{msg}");
    e.no_machines();
}

#[test]
fn missing_or_wrong_iso_is_named() {
    let e = Env::new();
    let msg = stderr(&e.run(&["up", "--iso", "/nonexistent/b2d.iso"]));
    assert!(
        msg.contains("/nonexistent/b2d.iso: no such ISO (--iso)"),
        "{msg}"
    );
    let out = e
        .cmd(&["up"])
        .env("B2D_QEMU", "/bin/false")
        .env("B2D_ISO", "/nonexistent/env.iso")
        .output()
        .unwrap();
    let msg = stderr(&out);
    assert!(
        msg.contains("/nonexistent/env.iso: no such ISO (B2D_ISO)"),
        "{msg}"
    );
    let not_iso = e.dir.path().join("disk.img");
    std::fs::write(&not_iso, vec![0u8; 1 << 16]).unwrap();
    let msg = stderr(&e.run(&["up", "--iso", not_iso.to_str().unwrap()]));
    assert!(msg.contains("disk.img: not an ISO 9660 image"), "{msg}");
    e.no_machines();
}

#[test]
fn a_port_in_use_is_refused_before_anything_is_made() {
    let e = Env::new();
    let (_held, port) = test_support::busy_port();
    let port = port.to_string();
    let iso = e.fake_iso();
    let msg = stderr(&e.run(&["up", "--iso", iso.to_str().unwrap(), "--docker-port", &port]));
    assert!(
        msg.contains(&format!(
            "127.0.0.1:{port} (docker of machine \"default\") is in use"
        )),
        "{msg}"
    );
    assert!(msg.contains("--docker-port"), "{msg}");
    e.no_machines();
}

#[test]
fn a_stopped_machine_explains_itself_and_keeps_its_disk() {
    let e = Env::new();
    let dir = e.stopped_machine("dev");
    let disk = head(&dir.join("disk.img"));

    for verb in ["env", "ssh", "ip"] {
        let msg = stderr(&e.run(&[verb, "dev"]));
        assert!(
            msg.contains("machine \"dev\" is not running"),
            "{verb}: {msg}"
        );
        assert!(msg.contains("b2d up dev"), "{verb}: {msg}");
    }
    let unset = stdout(&e.run(&["env", "dev", "--unset", "--shell", "fish"]));
    assert!(unset.contains("set -e DOCKER_HOST;"), "{unset}");
    assert!(
        unset.contains("env dev --shell fish --unset | source"),
        "{unset}"
    );

    let st: serde_json::Value =
        serde_json::from_str(&stdout(&e.run(&["status", "dev", "--json"]))).unwrap();
    assert_eq!(st["state"], "Stopped");
    assert_eq!(st["docker_host"], "tcp://127.0.0.1:40376");
    let ls = stdout(&e.run(&["ls"]));
    assert!(
        ls.lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .take(2)
            .eq(["dev", "Stopped"]),
        "{ls}"
    );
    let msg = stderr(&e.run(&["logs", "dev"]));
    assert!(msg.contains("no console log yet"), "{msg}");
    let out = e.run(&["stop", "dev"]);
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("Machine \"dev\" is not running."), "{said}");
    let out = e.run(&["suspend", "dev"]);
    assert!(!out.status.success());
    let msg = stderr(&out);
    assert!(
        msg.contains("machine \"dev\" is not running: there is nothing to suspend"),
        "{msg}"
    );
    assert!(!dir.join("suspend.json").exists());

    let msg = stderr(&e.run(&["up", "dev", "--disk-size", "1G"]));
    assert!(msg.contains("cannot shrink to 1 GiB"), "{msg}");
    let msg = stderr(&e.run(&["rm", "dev"]));
    assert!(msg.contains("pass -f"), "{msg}");
    assert_eq!(head(&dir.join("disk.img")), disk, "disk changed");

    assert!(stdout(&e.run(&["rm", "-f", "dev"])).is_empty());
    assert!(!dir.exists());
    e.no_machines();
}

#[test]
fn qemu_that_fails_to_start_is_reported_with_its_words() {
    let e = Env::new();
    e.stopped_machine("dev");
    let fake = e.dir.path().join("qemu");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'qemu: -accel kvm: no accelerator found' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = e
        .cmd(&["up", "dev"])
        .env("B2D_QEMU", &fake)
        .output()
        .unwrap();
    let msg = stderr(&out);
    assert!(msg.contains("QEMU did not start machine \"dev\""), "{msg}");
    assert!(msg.contains("no accelerator found"), "{msg}");
}

/// Break a machine's config.json the way `how` says: `garbled` JSON, a
/// `directory` in its place, or a `dangling` symlink (unreadable even for
/// root).
fn break_config(dir: &std::path::Path, how: &str) {
    let config = dir.join("config.json");
    std::fs::remove_file(&config).unwrap();
    match how {
        "garbled" => std::fs::write(&config, "{\"cpus\": 2, \"memory_mib\":").unwrap(),
        "directory" => std::fs::create_dir(&config).unwrap(),
        "dangling" => std::os::unix::fs::symlink("/nonexistent/config.json", &config).unwrap(),
        _ => unreachable!("no way to break a config called {how}"),
    }
}

#[test]
fn a_broken_config_says_how_to_recover() {
    let e = Env::new();
    for name in ["garbled", "directory", "dangling"] {
        let dir = e.stopped_machine(name);
        let disk = head(&dir.join("disk.img"));
        break_config(&dir, name);
        for verb in [
            "up", "status", "env", "ssh", "stop", "suspend", "logs", "ip", "ports", "rm",
        ] {
            let msg = stderr(&e.run(&[verb, name]));
            assert!(
                msg.contains(&format!("machine \"{name}\" is broken")),
                "{verb}: {msg}"
            );
            assert!(
                msg.contains(&format!("{}", dir.join("config.json").display())),
                "{verb}: {msg}"
            );
            assert!(
                msg.contains(&format!("`b2d rm -f {name}`")),
                "{verb}: {msg}"
            );
            assert_eq!(msg.lines().count(), 1, "{verb}: one line: {msg}");
        }
        assert_eq!(head(&dir.join("disk.img")), disk, "{name}: disk changed");
    }
}

#[test]
fn ls_lists_a_broken_machine_with_its_reason_and_the_others_too() {
    let e = Env::new();
    e.stopped_machine("good");
    let garbled = e.stopped_machine("garbled");
    break_config(&garbled, "garbled");
    let unreadable = e.stopped_machine("unreadable");
    break_config(&unreadable, "dangling");

    let ls = stdout(&e.run(&["ls"]));
    let rows: Vec<Vec<&str>> = ls
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["NAME", "STATE"],
            vec!["garbled", "Broken"],
            vec!["good", "Stopped"],
            vec!["unreadable", "Broken"]
        ],
        "{ls}"
    );
    for (name, dir, why) in [
        ("garbled", &garbled, "is not a b2d machine config"),
        ("unreadable", &unreadable, "cannot be read"),
    ] {
        let reason = ls
            .lines()
            .find(|l| l.starts_with(&format!("machine \"{name}\" is broken: ")))
            .unwrap_or_else(|| panic!("no reason for {name}: {ls}"));
        assert!(
            reason.contains(&format!("{} {why}", dir.join("config.json").display())),
            "{reason}"
        );
        assert!(reason.contains(&format!("`b2d rm -f {name}`")), "{reason}");
    }

    let v: serde_json::Value = serde_json::from_str(&stdout(&e.run(&["ls", "--json"]))).unwrap();
    let all = v.as_array().unwrap();
    assert_eq!(all.len(), 3, "{v}");
    assert_eq!(all[1]["name"], "good");
    assert_eq!(all[1]["state"], "Stopped");
    assert_eq!(all[1]["cpus"], 1);
    for (i, name, why) in [
        (0, "garbled", "is not a b2d machine config"),
        (2, "unreadable", "cannot be read"),
    ] {
        assert_eq!(all[i]["name"], name, "{v}");
        assert_eq!(all[i]["state"], "Broken", "{v}");
        let error = all[i]["error"].as_str().unwrap();
        assert!(error.contains(why), "{error}");
        assert!(error.contains(&format!("`b2d rm -f {name}`")), "{error}");
    }

    // Nor does a broken machine stop another one from booting: `up good`
    // gets as far as starting QEMU (here /bin/false).
    let msg = stderr(&e.run(&["up", "good"]));
    assert!(msg.contains("QEMU did not start machine \"good\""), "{msg}");
}

/// A child process killed when dropped, so a failing test leaves none
/// behind.
struct Reaped(std::process::Child);

impl Reaped {
    fn spawn(cmd: &mut Command) -> Reaped {
        Reaped(
            cmd.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn rm_f_removes_a_broken_machine_and_kills_only_its_own_qemu() {
    let e = Env::new();
    e.stopped_machine("good");
    let dir = e.stopped_machine("bad");
    break_config(&dir, "garbled");
    let pid_file = dir.join("qemu.pid");
    // Its "QEMU": a process whose command line names the pid file, as
    // QEMU's `-pidfile` does.
    let mut qemu = Reaped::spawn(
        Command::new("sh")
            .args(["-c", "while :; do sleep 1; done"])
            .arg(&pid_file),
    );
    std::fs::write(&pid_file, qemu.0.id().to_string()).unwrap();

    let msg = stderr(&e.run(&["rm", "bad"]));
    assert!(msg.contains("`b2d rm -f bad`"), "{msg}");
    assert!(dir.exists());
    assert!(qemu.alive(), "killed without -f");

    let out = e.run(&["rm", "-f", "bad"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("Machine \"bad\" removed."), "{said}");
    assert!(!dir.exists());
    let status = qemu.0.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "its QEMU was not killed: {status}"
    );
    assert_eq!(e.dir.entries(), 1, "only the good machine is left");

    // A pid file naming some other live process (a reused pid) kills
    // nothing.
    let dir = e.stopped_machine("reused");
    break_config(&dir, "directory");
    let mut other = Reaped::spawn(Command::new("sleep").arg("30"));
    std::fs::write(dir.join("qemu.pid"), other.0.id().to_string()).unwrap();
    stdout(&e.run(&["rm", "-f", "reused"]));
    assert!(!dir.exists());
    assert!(other.alive(), "an unrelated process was killed");
}
