use super::*;
use serde_json::json;

const PEM_A: &str = "-----BEGIN CERTIFICATE-----\nQUFB\n-----END CERTIFICATE-----\n";
const PEM_B: &str = "-----BEGIN CERTIFICATE-----\nQkJC\n-----END CERTIFICATE-----\n";
const DEBIAN: &str = "-----BEGIN CERTIFICATE-----\nREVC\n-----END CERTIFICATE-----";

fn engine() -> Engine {
    let mut e = Engine::default();
    e.daemon
        .insert("registry-mirrors".into(), json!(["https://m.example"]));
    e.daemon.insert("labels".into(), json!(["env=dev"]));
    e.env
        .insert("HTTP_PROXY".into(), "http://10.0.2.2:3128".into());
    e.ca_certs = vec![PEM_A.into(), PEM_B.into()];
    e
}

fn paths(t: &Path) -> Paths {
    let p = Paths::under(t, &t.join("etc"));
    std::fs::create_dir_all(t.join("etc/ssl/certs")).unwrap();
    std::fs::write(p.bundle(), DEBIAN).unwrap();
    p
}

#[test]
fn daemon_json_ca_bundle_and_environment_are_written() {
    let t = tempfile::tempdir().unwrap();
    let p = paths(t.path());
    let env = apply(&p, &engine());
    assert_eq!(
        env,
        vec![("HTTP_PROXY".to_string(), "http://10.0.2.2:3128".to_string())]
    );
    let daemon: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.daemon_json()).unwrap()).unwrap();
    assert_eq!(
        daemon,
        json!({"registry-mirrors": ["https://m.example"], "labels": ["env=dev"]})
    );
    let bundle = std::fs::read_to_string(p.bundle()).unwrap();
    assert_eq!(
        bundle,
        format!("{DEBIAN}\n{PEM_A}{PEM_B}"),
        "appended after Debian's"
    );
    assert_eq!(
        std::fs::read_to_string(p.local_cas.join("b2d-2.crt")).unwrap(),
        PEM_B
    );
    use std::os::unix::fs::PermissionsExt;
    for f in [p.daemon_json(), p.bundle()] {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{}", f.display());
    }
    // Applied again (a second call in one boot): nothing is added twice.
    apply(&p, &engine());
    assert_eq!(std::fs::read_to_string(p.bundle()).unwrap(), bundle);
}

#[test]
fn nothing_to_apply_writes_nothing_and_b2d_s_own_keys_never_reach_dockerd() {
    let t = tempfile::tempdir().unwrap();
    let p = paths(t.path());
    assert!(apply(&p, &Engine::default()).is_empty());
    assert!(!p.daemon_json().exists());
    assert_eq!(std::fs::read_to_string(p.bundle()).unwrap(), DEBIAN);
    let mut e = Engine::default();
    e.daemon
        .insert("hosts".into(), json!(["tcp://0.0.0.0:2375"]));
    e.daemon.insert("debug".into(), json!(true));
    e.env.insert("PATH".into(), "/evil".into());
    assert!(apply(&p, &e).is_empty());
    let daemon: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.daemon_json()).unwrap()).unwrap();
    assert_eq!(daemon, json!({"debug": true}));
}

#[test]
fn the_host_s_settings_are_kept_for_boots_without_them() {
    let t = tempfile::tempdir().unwrap();
    let b2d = t.path().join("b2d");
    assert_eq!(settings(None, &b2d), Engine::default(), "nothing kept yet");
    let e = engine();
    assert_eq!(settings(Some(&e), &b2d), e);
    assert_eq!(
        Engine::parse(&std::fs::read(kept(&b2d)).unwrap()).unwrap(),
        e
    );
    assert_eq!(settings(None, &b2d), e, "a boot without fw_cfg");
    // The host's newer settings replace the kept ones, emptied ones too.
    assert_eq!(settings(Some(&Engine::default()), &b2d), Engine::default());
    assert_eq!(settings(None, &b2d), Engine::default());
    std::fs::write(kept(&b2d), "[").unwrap();
    assert_eq!(
        settings(None, &b2d),
        Engine::default(),
        "a torn copy applies nothing"
    );
}
