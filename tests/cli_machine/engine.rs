//! The engine flags on `up` and `disk create`: every malformed value
//! refused before anything is made, and the settings of a stopped machine
//! in the config `up` hands the next boot.

use super::{stderr, stdout, Env};

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
