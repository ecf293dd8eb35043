//! The machine verbs' misuse errors, as a user meets them, without booting
//! anything: unknown machine, bad name, missing or wrong ISO, missing
//! QEMU, a port in use, a stopped machine, a disk asked to shrink. None of
//! them may leave a machine behind or touch an existing one's disk.

use b2d::host::create::{create, NewMachine};
use b2d::host::machine::{Config, Store};
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

/// The engine flags' values that must be refused, each with what the
/// error must say.
fn bad_engine_flags(dir: &std::path::Path) -> Vec<(Vec<String>, String)> {
    let hosts = dir.join("hosts.json");
    std::fs::write(&hosts, r#"{"hosts":["tcp://0.0.0.0:2375"]}"#).unwrap();
    let list = dir.join("list.json");
    std::fs::write(&list, "[1]").unwrap();
    let typo = dir.join("typo.json");
    std::fs::write(&typo, r#"{"registry-mirror":["https://m"]}"#).unwrap();
    let key = dir.join("key.pem");
    std::fs::write(&key, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let p = |p: &std::path::Path| p.display().to_string();
    vec![
        (
            s(&["--engine-opt", "frobnicate=1"]),
            "--engine-opt frobnicate=1: dockerd has no daemon flag --frobnicate".into(),
        ),
        (
            s(&["--engine-opt", "regstry-mirror=https://m"]),
            "did you mean --engine-opt registry-mirror=".into(),
        ),
        (
            s(&["--engine-opt", "tlsverify=false"]),
            "--engine-opt tlsverify=false: --tlsverify is b2d's own".into(),
        ),
        (
            s(&["--engine-opt", "debug=maybe"]),
            "--engine-opt debug=maybe: --debug takes true or false".into(),
        ),
        (
            s(&["--registry-mirror", "mirror.example"]),
            "--registry-mirror mirror.example: not a URL".into(),
        ),
        (
            s(&["--insecure-registry", "http://r:5000"]),
            "--insecure-registry http://r:5000: give the registry without a scheme".into(),
        ),
        (
            s(&["--engine-label", "nolabel"]),
            "--engine-label nolabel: a label is KEY=VALUE".into(),
        ),
        (
            s(&["--engine-env", "1X=y"]),
            "--engine-env 1X=y: \"1X\": not a variable name".into(),
        ),
        (
            s(&["--engine-env", "PATH=/x"]),
            "--engine-env PATH=/x: \"PATH\": b2d sets it for dockerd itself".into(),
        ),
        (
            vec!["--daemon-json".into(), p(&hosts)],
            format!("--daemon-json {}: key \"hosts\" is b2d's own", p(&hosts)),
        ),
        (
            vec!["--daemon-json".into(), p(&list)],
            format!(
                "--daemon-json {}: daemon.json holds one JSON object",
                p(&list)
            ),
        ),
        (
            vec!["--daemon-json".into(), p(&typo)],
            "did you mean \"registry-mirrors\"".into(),
        ),
        (
            s(&["--daemon-json", "/nonexistent/daemon.json"]),
            "--daemon-json /nonexistent/daemon.json: No such file".into(),
        ),
        (
            vec!["--ca-cert".into(), p(&key)],
            format!("--ca-cert {}: a PRIVATE KEY is not a certificate", p(&key)),
        ),
        (
            s(&["--ca-cert", "/nonexistent/ca.pem"]),
            "--ca-cert /nonexistent/ca.pem: No such file".into(),
        ),
    ]
}

#[test]
fn a_bad_engine_setting_is_refused_before_anything_is_made() {
    let e = Env::new();
    let iso = e.fake_iso();
    for (flags, says) in bad_engine_flags(e.dir.path()) {
        let mut args = vec!["up", "--iso", iso.to_str().unwrap()];
        args.extend(flags.iter().map(String::as_str));
        let msg = stderr(&e.run(&args));
        assert!(msg.starts_with("b2d: error: "), "{flags:?}: {msg}");
        assert!(msg.contains(&says), "{flags:?}: {msg}");
        assert_eq!(msg.lines().count(), 1, "one line: {msg}");
        e.no_machines();
    }
    // The same checks for a disk made for another hypervisor.
    let disk = e.dir.path().join("disk.vmdk");
    let key = test_support::keygen(e.dir.path());
    let pubkey = key.public;
    let create = |extra: &[&str]| {
        let mut a = vec![
            "disk",
            "create",
            disk.to_str().unwrap(),
            "--size",
            "1G",
            "--format",
            "vmdk",
            "--ssh-key",
            pubkey.to_str().unwrap(),
        ];
        a.extend(extra);
        e.run(&a)
    };
    let msg = stderr(&create(&["--engine-label", "nolabel"]));
    assert!(
        msg.contains("--engine-label nolabel: a label is KEY=VALUE"),
        "{msg}"
    );
    let msg = stderr(&create(&[
        "--compat",
        "docker-machine",
        "--engine-label",
        "a=b",
    ]));
    assert!(
        msg.contains("--compat docker-machine writes only docker-machine's entries"),
        "{msg}"
    );
    assert!(!disk.exists());
    let out = stdout(&create(&[
        "--registry-mirror",
        "https://m.example",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["entries"].to_string().contains(".b2d/engine.json"), "{v}");
}

/// The per-boot config `up` wrote for QEMU, as JSON.
fn guest_config(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("guest-config.json")).unwrap()).unwrap()
}

#[test]
fn engine_settings_of_a_stopped_machine_reach_the_next_boot() {
    let e = Env::new();
    let dir = e.stopped_machine("dev");
    let ca = e.dir.path().join("corp-ca.pem");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Corp Root");
    let cert = params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    std::fs::write(&ca, cert.pem()).unwrap();
    let daemon = e.dir.path().join("daemon.json");
    std::fs::write(&daemon, r#"{"log-level":"warn","labels":["from=file"]}"#).unwrap();
    // QEMU (/bin/false) fails to start: everything before it happened.
    let out = e
        .cmd(&[
            "up",
            "dev",
            "--registry-mirror",
            "https://mirror.example",
            // docker-machine's spelling.
            "--engine-insecure-registry",
            "registry.local:5000",
            "--engine-label",
            "env=dev",
            "--engine-opt",
            "log-level=debug",
            "--engine-env",
            "HTTPS_PROXY=http://explicit:1",
            "--daemon-json",
            daemon.to_str().unwrap(),
            "--proxy-from-env",
            "--ca-cert",
            ca.to_str().unwrap(),
        ])
        .env("B2D_QEMU", "/bin/false")
        .env("HTTP_PROXY", "http://127.0.0.1:3128")
        .env("HTTPS_PROXY", "http://127.0.0.1:3129")
        .env("NO_PROXY", "localhost,.corp")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    let msg = stderr(&out);
    assert!(msg.contains("QEMU did not start machine \"dev\""), "{msg}");
    let engine = &guest_config(&dir)["engine"];
    assert_eq!(
        engine["daemon"],
        serde_json::json!({
            "log-level": "debug",
            "labels": ["from=file", "env=dev"],
            "registry-mirrors": ["https://mirror.example"],
            "insecure-registries": ["registry.local:5000"],
        })
    );
    assert_eq!(engine["env"]["HTTP_PROXY"], "http://10.0.2.2:3128");
    assert_eq!(engine["env"]["HTTPS_PROXY"], "http://explicit:1");
    assert_eq!(engine["env"]["NO_PROXY"], "10.0.2.2,.corp");
    assert_eq!(
        engine["ca_certs"][0].as_str().unwrap().trim(),
        cert.pem().trim()
    );
    // Remembered: a plain `up` sends them again; `inspect` shows them.
    let config = std::fs::read(dir.join("config.json")).unwrap();
    std::fs::remove_file(dir.join("guest-config.json")).unwrap();
    stderr(&e.run(&["up", "dev"]));
    assert_eq!(
        guest_config(&dir)["engine"]["daemon"]["labels"][1],
        "env=dev"
    );
    let subject = stdout(&e.run(&["inspect", "dev", "--format", "{{json .Engine.CaCerts}}"]));
    assert!(
        subject.contains("\"subject\":\"CN=Corp Root\""),
        "{subject}"
    );
    // A refused setting leaves the machine as it was.
    let msg = stderr(&e.run(&["up", "dev", "--engine-label", "bad"]));
    assert!(msg.contains("--engine-label bad: "), "{msg}");
    assert_eq!(std::fs::read(dir.join("config.json")).unwrap(), config);
    // `none` empties a list; --no-proxy-from-env stops the proxies.
    stderr(&e.run(&[
        "up",
        "dev",
        "--engine-label",
        "none",
        "--no-proxy-from-env",
        "--ca-cert",
        "none",
    ]));
    let engine = &guest_config(&dir)["engine"];
    assert_eq!(engine["daemon"]["labels"], serde_json::json!(["from=file"]));
    assert!(engine["env"].get("HTTP_PROXY").is_none(), "{engine}");
    assert!(engine.get("ca_certs").is_none(), "{engine}");
}

#[test]
fn the_new_verbs_explain_their_misuse() {
    let e = Env::new();
    let dir = e.stopped_machine("dev");
    for args in [
        &["url", "dev"][..],
        &["cp", "./x", "dev:/tmp"],
        &["cp", "dev:/tmp/x", "."],
    ] {
        let msg = stderr(&e.run(args));
        assert!(
            msg.contains("machine \"dev\" is not running"),
            "{args:?}: {msg}"
        );
        assert!(msg.contains("b2d up dev"), "{args:?}: {msg}");
    }
    let msg = stderr(&e.run(&["cp", "a", "b"]));
    assert!(msg.contains("write the guest side as NAME:PATH"), "{msg}");
    let msg = stderr(&e.run(&["cp", "dev:/a", "dev:/b"]));
    assert!(msg.contains("copy to this host first"), "{msg}");
    let msg = stderr(&e.run(&["cp", "dev:", "x"]));
    assert!(msg.contains("no path after the machine name"), "{msg}");
    let msg = stderr(&e.run(&["cp", "only-one"]));
    assert!(msg.contains("<DST>"), "{msg}");

    // kill of a stopped machine: nothing to do, said so.
    let out = e.run(&["kill", "dev"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Machine \"dev\" is not running."));
    assert!(dir.join("disk.img").exists());

    // inspect: JSON by default, a template, and a template's mistake named.
    let v: serde_json::Value = serde_json::from_str(&stdout(&e.run(&["inspect", "dev"]))).unwrap();
    assert_eq!(v["state"], "Stopped");
    assert_eq!(v["ssh_port"], 40022);
    assert_eq!(
        stdout(&e.run(&["inspect", "dev", "--format", "{{.Name}} {{.DockerHost}}"])),
        "dev tcp://127.0.0.1:40376\n"
    );
    let msg = stderr(&e.run(&["inspect", "dev", "--format", "{{.Nope}}"]));
    assert!(
        msg.contains("--format: {{.Nope}}: no field Nope (there are: "),
        "{msg}"
    );
    let msg = stderr(&e.run(&["inspect", "dev", "--format", "{{.Name}}", "--json"]));
    assert!(msg.contains("cannot be used with"), "{msg}");

    // ssh-config works for a stopped machine: the port is remembered.
    let block = stdout(&e.run(&["ssh-config", "dev"]));
    assert!(
        block.starts_with("Host b2d-dev\n  HostName 127.0.0.1\n  Port 40022\n"),
        "{block}"
    );
    assert!(
        block.contains(&format!(
            "  UserKnownHostsFile \"{}\"\n",
            dir.join("known_hosts").display()
        )),
        "{block}"
    );
    assert!(block.contains("  StrictHostKeyChecking yes\n"), "{block}");
    // OpenSSH itself reads the block as meant.
    let cfg = e.dir.path().join("ssh_config");
    std::fs::write(&cfg, &block).unwrap();
    let out = Command::new("ssh")
        .args(["-G", "-F", cfg.to_str().unwrap(), "b2d-dev"])
        .output()
        .unwrap();
    let seen = stdout(&out);
    for want in [
        "hostname 127.0.0.1",
        "port 40022",
        "user docker",
        "stricthostkeychecking true",
        "hostkeyalias b2d-dev",
    ] {
        assert!(
            seen.lines().any(|l| l == want),
            "{want} not in ssh -G:\n{seen}"
        );
    }

    // completion: a script per shell, naming the verbs; others refused.
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&e.run(&["completion", shell]));
        assert!(
            script.contains("ssh-config") && script.contains("registry-mirror"),
            "{shell}"
        );
    }
    let msg = stderr(&e.run(&["completion", "tcsh"]));
    assert!(msg.contains("invalid value 'tcsh'"), "{msg}");
    assert!(msg.contains("bash"), "{msg}");
    let msg = stderr(&e.run(&["completion"]));
    assert!(msg.contains("<SHELL>"), "{msg}");
}
