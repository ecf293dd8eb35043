use super::*;
use serde_json::json;

fn args() -> EngineArgs {
    EngineArgs {
        opts: vec!["log-level=debug".into(), "label=from=opt".into()],
        env: vec!["FOO=bar".into()],
        registry_mirrors: vec!["https://mirror.example".into()],
        insecure_registries: vec!["registry.local:5000".into()],
        labels: vec!["env=dev".into()],
        ..Default::default()
    }
}

fn ca_pem(name: &str) -> String {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, name.to_string());
    let key = rcgen::KeyPair::generate().unwrap();
    p.self_signed(&key).unwrap().pem()
}

#[test]
fn flags_file_and_b2d_merge_in_order_into_one_daemon_json() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("daemon.json");
    std::fs::write(
        &file,
        r#"{"log-level":"warn","labels":["from=file"],"registry-mirrors":["https://file.example"],"features":{"buildkit":true}}"#,
    )
    .unwrap();
    let mut a = args();
    a.daemon_json = Some(file.clone());
    let c = apply(&EngineConfig::default(), &a).unwrap();
    assert_eq!(
        c.daemon_json.as_ref().unwrap().from,
        file.canonicalize().unwrap()
    );
    let e = for_guest(&c, &|_| None).unwrap();
    assert_eq!(
        Value::Object(e.daemon.clone()),
        json!({
            "log-level": "debug",
            "labels": ["from=file", "from=opt", "env=dev"],
            "registry-mirrors": ["https://file.example", "https://mirror.example"],
            "insecure-registries": ["registry.local:5000"],
            "features": {"buildkit": true},
        })
    );
    assert_eq!(e.env.get("FOO").map(String::as_str), Some("bar"));
    assert!(e.problems().is_empty(), "{:?}", e.problems());
    // What config.json keeps reads back the same.
    let text = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<EngineConfig>(&text).unwrap(), c);
    assert_eq!(
        serde_json::to_string(&EngineConfig::default()).unwrap(),
        "{}"
    );
}

#[test]
fn a_list_given_replaces_the_old_one_and_none_empties_it() {
    let c = apply(&EngineConfig::default(), &args()).unwrap();
    let more = EngineArgs {
        registry_mirrors: vec!["https://b.example".into(), "https://b.example".into()],
        labels: vec!["none".into()],
        ..Default::default()
    };
    let d = apply(&c, &more).unwrap();
    assert_eq!(d.registry_mirrors, vec!["https://b.example"]);
    assert!(d.labels.is_empty());
    assert_eq!(d.opts, c.opts, "what was not given stays");
    assert_eq!(
        changed(&c, &d),
        vec!["--registry-mirror https://b.example", "--engine-label none"]
    );
    assert!(changed(&d, &d).is_empty());
    let e = apply(
        &c,
        &EngineArgs {
            labels: vec!["none".into(), "a=b".into()],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "--engine-label none: `--engine-label none` empties the list: give it alone"
    );
}

#[test]
fn a_bad_setting_is_refused_with_its_flag_and_key_named() {
    let t = tempfile::tempdir().unwrap();
    let bad = |a: EngineArgs| apply(&EngineConfig::default(), &a).unwrap_err().to_string();
    let e = bad(EngineArgs {
        opts: vec!["frobnicate=1".into()],
        ..Default::default()
    });
    assert!(
        e.starts_with("--engine-opt frobnicate=1: dockerd has no daemon flag --frobnicate"),
        "{e}"
    );
    let e = bad(EngineArgs {
        registry_mirrors: vec!["mirror.example".into()],
        ..Default::default()
    });
    assert!(
        e.starts_with("--registry-mirror mirror.example: not a URL"),
        "{e}"
    );
    for (text, says) in [
        ("[1]", "holds one JSON object"),
        ("{", "not JSON"),
        (
            r#"{"hosts":["tcp://0.0.0.0:2375"]}"#,
            "key \"hosts\" is b2d's own",
        ),
        (r#"{"tlsverify":false}"#, "key \"tlsverify\" is b2d's own"),
        (
            r#"{"registry-mirror":["https://m"]}"#,
            "did you mean \"registry-mirrors\"",
        ),
        (r#"{"debug":"yes"}"#, "\"debug\" takes true or false"),
    ] {
        let f = t.path().join("d.json");
        std::fs::write(&f, text).unwrap();
        let e = bad(EngineArgs {
            daemon_json: Some(f.clone()),
            ..Default::default()
        });
        assert!(
            e.starts_with(&format!("--daemon-json {}: ", f.display())),
            "{e}"
        );
        assert!(e.contains(says), "{text}: {e}");
        crate::assert_readable(&e);
    }
    let e = bad(EngineArgs {
        daemon_json: Some(t.path().join("missing.json")),
        ..Default::default()
    });
    assert!(e.contains("missing.json: No such file"), "{e}");
    let not_pem = t.path().join("ca.txt");
    std::fs::write(&not_pem, "hello").unwrap();
    let e = bad(EngineArgs {
        ca_certs: vec![not_pem.clone()],
        ..Default::default()
    });
    assert_eq!(
        e,
        format!(
            "--ca-cert {}: no PEM certificate in it (a file with -----BEGIN CERTIFICATE----- blocks)",
            not_pem.display()
        )
    );
}

#[test]
fn proxies_come_from_the_host_and_engine_env_wins() {
    let c = apply(
        &EngineConfig::default(),
        &EngineArgs {
            proxy_from_env: Some(true),
            env: vec!["HTTPS_PROXY=http://explicit:1".into()],
            ..Default::default()
        },
    )
    .unwrap();
    assert!(c.proxy_from_env);
    let host = |k: &str| match k {
        "HTTP_PROXY" => Some("http://127.0.0.1:3128".to_string()),
        "HTTPS_PROXY" => Some("http://localhost:3128".to_string()),
        "NO_PROXY" => Some("localhost,.corp".to_string()),
        _ => None,
    };
    let e = for_guest(&c, &host).unwrap();
    assert_eq!(e.env["HTTP_PROXY"], "http://10.0.2.2:3128");
    assert_eq!(e.env["HTTPS_PROXY"], "http://explicit:1");
    assert_eq!(e.env["NO_PROXY"], "10.0.2.2,.corp");
    let off = apply(
        &c,
        &EngineArgs {
            proxy_from_env: Some(false),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(changed(&c, &off), vec!["--no-proxy-from-env"]);
    assert!(!for_guest(&off, &host)
        .unwrap()
        .env
        .contains_key("HTTP_PROXY"));
}

#[test]
fn ca_certificates_are_kept_as_pem_with_their_file_and_subject() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("corp.pem");
    std::fs::write(&f, ca_pem("Corp Root")).unwrap();
    let c = apply(
        &EngineConfig::default(),
        &EngineArgs {
            ca_certs: vec![f.clone(), f.clone()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(c.ca_certs.len(), 1, "the same certificate once");
    assert_eq!(c.ca_certs[0].subject, "CN=Corp Root");
    let e = for_guest(&c, &|_| None).unwrap();
    assert_eq!(e.ca_certs, vec![c.ca_certs[0].pem.clone()]);
    assert!(e.problems().is_empty());
    assert_eq!(
        changed(&EngineConfig::default(), &c),
        vec![format!("--ca-cert {}", f.canonicalize().unwrap().display())]
    );
    let none = apply(
        &c,
        &EngineArgs {
            ca_certs: vec!["none".into()],
            ..Default::default()
        },
    )
    .unwrap();
    assert!(none.ca_certs.is_empty());
    // Too much to carry is refused with the flag to change.
    let mut big = c.clone();
    big.ca_certs = vec![c.ca_certs[0].clone(); MAX_SIZE / c.ca_certs[0].pem.len() + 1];
    let e = for_guest(&big, &|_| None).unwrap_err().to_string();
    assert!(e.contains("give fewer or smaller --ca-cert files"), "{e}");
}

#[test]
fn a_device_a_fifo_or_a_large_file_is_refused_unread() {
    let t = tempfile::tempdir().unwrap();
    // As the binary prints it: the whole chain, the path named once.
    let bad = |a: EngineArgs| crate::error_chain(&apply(&EngineConfig::default(), &a).unwrap_err());
    let e = bad(EngineArgs {
        daemon_json: Some("/dev/zero".into()),
        ..Default::default()
    });
    assert_eq!(
        e,
        "--daemon-json /dev/zero: a character device, not a regular file"
    );
    let fifo = t.path().join("ca.pem");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let e = bad(EngineArgs {
        ca_certs: vec![fifo.clone()],
        ..Default::default()
    });
    assert!(
        e.starts_with(&format!(
            "--ca-cert {}: a FIFO, not a regular file",
            fifo.display()
        )),
        "{e}"
    );
    let big = t.path().join("big.json");
    std::fs::write(&big, vec![b' '; MAX_SIZE + 1]).unwrap();
    let e = bad(EngineArgs {
        daemon_json: Some(big.clone()),
        ..Default::default()
    });
    assert_eq!(
        e,
        format!("--daemon-json {}: larger than 192 KiB", big.display())
    );
}
