use super::*;
use crate::sys::{CmdOutput, FakeSys};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn joined(p: &HookPlan) -> Vec<String> {
    p.commands.iter().map(|c| c.join(" ")).collect()
}

#[test]
fn bound_configures_address_route_and_dns() {
    let p = hook_plan(
        "bound",
        &env(&[
            ("interface", "eth0"),
            ("ip", "10.0.2.15"),
            ("subnet", "255.255.255.0"),
            ("broadcast", "10.0.2.255"),
            ("router", "10.0.2.2 10.0.2.3"),
            ("dns", "10.0.2.3 1.1.1.1"),
            ("domain", "example.org"),
            ("mtu", "1500"),
        ]),
    )
    .unwrap();
    assert_eq!(
        joined(&p),
        vec![
            "busybox ip -4 addr flush dev eth0",
            "busybox ip addr replace 10.0.2.15/24 broadcast 10.0.2.255 dev eth0",
            "busybox ip link set dev eth0 mtu 1500",
            "busybox ip route replace default via 10.0.2.2 dev eth0",
        ]
    );
    assert_eq!(
        p.resolv_conf.as_deref(),
        Some("# written by b2d-init (udhcpc)\nsearch example.org\nnameserver 10.0.2.3\nnameserver 1.1.1.1\n")
    );
}

#[test]
fn renew_does_not_flush_and_mask_wins_over_subnet() {
    let p = hook_plan(
        "renew",
        &env(&[("interface", "eth1"), ("ip", "192.168.1.9"), ("mask", "16")]),
    )
    .unwrap();
    assert_eq!(
        joined(&p),
        vec!["busybox ip addr replace 192.168.1.9/16 dev eth1"]
    );
    assert_eq!(p.resolv_conf, None);
}

#[test]
fn deconfig_leasefail_and_errors() {
    let p = hook_plan("deconfig", &env(&[("interface", "eth0")])).unwrap();
    assert_eq!(
        joined(&p),
        vec![
            "busybox ip -4 addr flush dev eth0",
            "busybox ip link set dev eth0 up"
        ]
    );
    assert_eq!(
        hook_plan("leasefail", &env(&[])).unwrap(),
        HookPlan::default()
    );
    let e = hook_plan("bound", &env(&[("interface", "eth0")])).unwrap_err();
    assert!(e.to_string().contains("ip"), "{e}");
    assert!(hook_plan("frob", &env(&[])).is_err());
}

#[test]
fn masks_and_addresses() {
    assert_eq!(mask_to_prefix("255.255.255.0"), 24);
    assert_eq!(mask_to_prefix("255.255.240.0"), 20);
    let out = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
               2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global eth0\\       valid_lft forever\n\
               3: eth1    inet 192.168.56.3/24 scope global eth1\n";
    assert_eq!(parse_ipv4_addrs(out), vec!["10.0.2.15", "192.168.56.3"]);
}

#[test]
fn links_are_physical_ethernet_only() {
    let d = tempfile::tempdir().unwrap();
    let mk = |name: &str, ty: &str, device: bool| {
        let p = d.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("type"), format!("{ty}\n")).unwrap();
        if device {
            std::fs::create_dir(p.join("device")).unwrap();
        }
    };
    mk("lo", "772", false);
    mk("eth1", "1", true);
    mk("eth0", "1", true);
    mk("docker0", "1", false);
    mk("sit0", "776", true);
    assert_eq!(ethernet_links(d.path()), vec!["eth0", "eth1"]);
    assert!(ethernet_links(&d.path().join("none")).is_empty());
}

#[test]
fn bring_up_runs_udhcpc_with_self_as_hook_and_collects_ips() {
    let d = tempfile::tempdir().unwrap();
    let eth = d.path().join("class/net/eth0");
    std::fs::create_dir_all(eth.join("device")).unwrap();
    std::fs::write(eth.join("type"), "1\n").unwrap();
    let sys = FakeSys::new();
    sys.set_output(
        "run busybox ip -4 -o addr show",
        CmdOutput {
            code: Some(0),
            stdout: b"2: eth0    inet 10.0.2.15/24 scope global eth0\n".to_vec(),
            ..Default::default()
        },
    );
    let ips = bring_up(&sys, d.path(), Path::new("/init"), 5, None);
    assert_eq!(ips, vec!["10.0.2.15"]);
    assert_eq!(
        sys.calls(),
        vec![
            "run busybox ip link set dev lo up",
            "run busybox ip link set dev eth0 up",
            "run busybox udhcpc -i eth0 -f -q -n -t 5 -T 2 -s /init",
            "run busybox ip -4 -o addr show",
        ]
    );
}

#[test]
fn apply_hook_writes_resolv_conf_and_reports_failures() {
    let d = tempfile::tempdir().unwrap();
    let resolv = d.path().join("resolv.conf");
    let plan = HookPlan {
        commands: vec![vec!["busybox".into(), "ip".into(), "x".into()]],
        resolv_conf: Some("nameserver 1.1.1.1\n".into()),
    };
    let sys = FakeSys::new();
    apply_hook(&sys, &plan, &resolv).unwrap();
    assert_eq!(
        std::fs::read_to_string(&resolv).unwrap(),
        "nameserver 1.1.1.1\n"
    );
    sys.set_output(
        "run busybox ip x",
        CmdOutput {
            code: Some(1),
            stderr: b"RTNETLINK answers: nope".to_vec(),
            ..Default::default()
        },
    );
    let e = apply_hook(&sys, &plan, &resolv).unwrap_err();
    assert!(
        e.to_string()
            .contains("busybox ip x exited with status 1: RTNETLINK answers: nope"),
        "{e}"
    );
}

#[test]
fn a_renewal_keeps_the_address_while_it_asks() {
    let renew = [("interface", "eth0"), RENEW_ENV];
    assert_eq!(
        hook_plan("deconfig", &env(&renew)).unwrap(),
        HookPlan::default()
    );
    let mut bound = renew.to_vec();
    bound.extend([("ip", "10.0.2.15"), ("mask", "24")]);
    assert_eq!(
        joined(&hook_plan("bound", &env(&bound)).unwrap()),
        vec!["busybox ip addr replace 10.0.2.15/24 dev eth0"]
    );
}
