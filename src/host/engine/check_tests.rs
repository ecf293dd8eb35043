use super::*;
use serde_json::json;

#[test]
fn mirrors_are_http_or_https_urls_with_a_host() {
    for ok in [
        "https://mirror.gcr.io",
        "http://10.0.2.2:5000",
        "https://[fd00::1]:443/v2",
        " https://m.example/path ",
    ] {
        assert_eq!(mirror(ok).unwrap(), ok.trim(), "{ok}");
    }
    for (bad, says) in [
        ("mirror.gcr.io", "not a URL"),
        ("ftp://m", "not ftp"),
        ("https://", "no host"),
        ("https://u:p@m", "docker login"),
        ("https://m:99999", "not 1 to 65535"),
        ("https://bad_host", "not a host name"),
        ("https://m/?x=1", "no query"),
    ] {
        let e = mirror(bad).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
        crate::assert_readable(&e);
    }
}

#[test]
fn insecure_registries_are_host_port_or_cidr() {
    for ok in [
        "registry.local:5000",
        "10.0.2.2",
        "10.0.0.0/8",
        "[::1]:5000",
        "fd00::/8",
    ] {
        assert_eq!(insecure_registry(ok).unwrap(), ok, "{ok}");
    }
    for (bad, says) in [
        ("http://r:5000", "without a scheme"),
        ("10.0.0.0/33", "0 to 32"),
        ("nope/8", "not an IP address"),
        ("r:port", "not 1 to 65535"),
        ("", "no host"),
    ] {
        let e = insecure_registry(bad).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

#[test]
fn labels_and_environment() {
    assert_eq!(label("env=dev").unwrap(), "env=dev");
    assert_eq!(label("empty=").unwrap(), "empty=");
    assert!(label("novalue")
        .unwrap_err()
        .to_string()
        .contains("KEY=VALUE"));
    assert!(label("=x").is_err());
    assert_eq!(env("NO_PROXY=a,b").unwrap(), "NO_PROXY=a,b");
    assert!(env("X").unwrap_err().to_string().contains("NAME=VALUE"));
    assert!(env("1X=y")
        .unwrap_err()
        .to_string()
        .contains("\"1X\": not a variable name"));
    assert_eq!(
        env("PATH=/x").unwrap_err().to_string(),
        "\"PATH\": b2d sets it for dockerd itself"
    );
    assert!(env("A=b\nc").unwrap_err().to_string().contains("newline"));
}

#[test]
fn engine_opts_map_to_daemon_json_with_their_kind() {
    assert_eq!(
        opt("log-level=debug").unwrap(),
        ("log-level", Kind::Str, json!("debug"))
    );
    assert_eq!(opt("--debug").unwrap(), ("debug", Kind::Bool, json!(true)));
    assert_eq!(opt("D").unwrap(), ("debug", Kind::Bool, json!(true)));
    assert_eq!(
        opt("ipv6=false").unwrap(),
        ("ipv6", Kind::Bool, json!(false))
    );
    assert_eq!(
        opt("max-concurrent-downloads=6").unwrap(),
        ("max-concurrent-downloads", Kind::Int, json!(6))
    );
    assert_eq!(
        opt("label=a=b").unwrap(),
        ("labels", Kind::List, json!("a=b"))
    );
    assert_eq!(
        opt("log-opt=max-size=10m").unwrap(),
        ("log-opts", Kind::Map, json!("max-size=10m"))
    );
    for (bad, says) in [
        ("frobnicate=1", "dockerd has no daemon flag --frobnicate"),
        (
            "regstry-mirror=https://m",
            "did you mean --engine-opt registry-mirror=",
        ),
        (
            "host=tcp://0.0.0.0:1",
            "--host is b2d's own: b2d sets dockerd's sockets",
        ),
        ("H=unix:///x", "--host is b2d's own"),
        ("tlsverify=false", "b2d sets dockerd's TLS itself"),
        ("data-root=/x", "the data disk persists"),
        ("http-proxy=http://p", "--engine-env HTTP_PROXY="),
        (
            "default-ulimit=nofile=1:2",
            "--daemon-json FILE with \"default-ulimits\"",
        ),
        (
            "log-level",
            "needs a value: use --engine-opt log-level=VALUE",
        ),
        ("log-level=", "no value"),
        ("log-level=loud", "debug, info, warn, error or fatal"),
        ("debug=yes", "takes true or false"),
        ("mtu=big", "whole number"),
        ("log-opt=max-size", "NAME=VALUE"),
        ("registry-mirror=mirror", "not a URL"),
        ("dns=one", "IP address"),
    ] {
        let e = opt(bad).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
        crate::assert_readable(&e);
    }
}

#[test]
fn daemon_json_keys_and_values_are_checked() {
    json_key("registry-mirrors").unwrap();
    json_key("runtimes").unwrap();
    let e = json_key("hosts").unwrap_err().to_string();
    assert!(e.contains("key \"hosts\" is b2d's own"), "{e}");
    let e = json_key("registry-mirror").unwrap_err().to_string();
    assert!(e.contains("did you mean \"registry-mirrors\""), "{e}");
    let e = json_key("zzzzzzzzzzzz").unwrap_err().to_string();
    assert!(e.ends_with("remove it"), "{e}");
    json_value("debug", &json!(true)).unwrap();
    json_value("runtimes", &json!({"x": {"path": "/x"}})).unwrap();
    json_value("labels", &json!(["a=b"])).unwrap();
    json_value("log-opts", &json!({"max-size": "10m"})).unwrap();
    for (k, v, says) in [
        ("debug", json!("yes"), "\"debug\" takes true or false"),
        ("labels", json!("a=b"), "a list of strings"),
        ("mtu", json!(1.5), "a whole number"),
        (
            "registry-mirrors",
            json!(["nope"]),
            "\"registry-mirrors\": nope: not a URL",
        ),
        (
            "log-level",
            json!("loud"),
            "\"log-level\": --log-level takes",
        ),
        ("log-opts", json!({"a": 1}), "an object of strings"),
    ] {
        let e = json_value(k, &v).unwrap_err().to_string();
        assert!(e.contains(says), "{k}: {e}");
    }
}
