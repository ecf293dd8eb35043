use super::*;
use crate::sys::FakeSys;
use crate::wire::guest_config::ShareFs;
use std::net::Ipv4Addr;

fn share(tag: &str, path: &str) -> Share {
    Share {
        tag: tag.into(),
        path: path.into(),
        readonly: false,
        fs: ShareFs::Virtiofs,
    }
}

fn control(t: &std::path::Path) -> Control {
    std::fs::create_dir_all(t.join("root")).unwrap();
    std::fs::create_dir_all(t.join("proc/sys/vm")).unwrap();
    std::fs::write(t.join("proc/sys/vm/drop_caches"), "").unwrap();
    for (link, mac) in [("eth0", "52:54:00:12:34:56"), ("eth1", "02:b2:00:00:8c:01")] {
        let dir = t.join("sys/class/net").join(link);
        std::fs::create_dir_all(dir.join("device")).unwrap();
        std::fs::write(dir.join("type"), "1\n").unwrap();
        std::fs::write(dir.join("address"), format!("{mac}\n")).unwrap();
    }
    Control {
        root: t.join("root"),
        proc_root: t.join("proc"),
        sys_root: t.join("sys"),
        dev_root: t.join("dev"),
        hook: "/sbin/b2d-init".into(),
        shares: vec![share("b2d0", "/home/alice"), share("b2d1", "/srv")],
        remount_for: Duration::from_millis(300),
        private: Some(PrivateNic {
            network: "lab".into(),
            mac: "02:b2:00:00:8c:01".into(),
            address: Ipv4Addr::new(192, 168, 140, 1),
            prefix: 24,
            peers: vec![],
        }),
    }
}

fn req(op: Op) -> Request {
    Request { id: 42, op }
}

#[test]
fn suspend_syncs_unmounts_and_drops_the_clean_cache_then_resume_undoes_it() {
    let t = tempfile::tempdir().unwrap();
    let c = control(t.path());
    let sys = FakeSys::new();
    let mut st = State::default();
    let r = handle(&sys, &c, &mut st, &req(Op::Suspend));
    assert_eq!(r.id, 42);
    assert_eq!(r.error, None, "{r:?}");
    let root = t.path().join("root");
    assert_eq!(
        sys.calls(),
        [
            "sync".to_string(),
            format!("umount {}", root.join("home/alice").display()),
            format!("umount {}", root.join("srv").display()),
            "sync".to_string(),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("proc/sys/vm/drop_caches")).unwrap(),
        "1"
    );

    let sys = FakeSys::new();
    let r = handle(
        &sys,
        &c,
        &mut st,
        &req(Op::Resumed {
            unix_ms: 1_800_000_000_123,
        }),
    );
    assert_eq!(r.error, None, "{r:?}");
    let calls = sys.calls();
    assert_eq!(calls[0], "set_clock 1800000000123");
    assert_eq!(calls.len(), 3, "{calls:?}");
    for (call, tag) in calls[1..].iter().zip(["b2d0", "b2d1"]) {
        assert!(
            call.starts_with(&format!("mount {tag} /proc/self/fd/"))
                && call.ends_with(" virtiofs - -"),
            "{call}"
        );
    }
    let real = |p: &str| root.join(p).canonicalize().unwrap();
    assert_eq!(sys.mounted_through_fds(), [real("home/alice"), real("srv")]);
    assert!(
        r.done.iter().any(|d| d.starts_with("clock stepped ")),
        "{r:?}"
    );

    // Nothing is left to mount a second time.
    let sys = FakeSys::new();
    handle(&sys, &c, &mut st, &req(Op::Resumed { unix_ms: 1 }));
    assert!(!sys.calls().iter().any(|c| c.starts_with("mount")));
}

#[test]
fn the_peers_of_a_running_machine_reach_its_hosts_file() {
    let t = tempfile::tempdir().unwrap();
    let c = control(t.path());
    let etc = t.path().join("root/etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("hostname"), "lab\n").unwrap();
    let peers = vec![Peer {
        name: "lab-4".into(),
        address: Ipv4Addr::new(192, 168, 140, 4),
    }];
    let mut st = State::default();
    let op = |network: &str| Op::Peers {
        network: network.into(),
        peers: peers.clone(),
    };
    let r = handle(&FakeSys::new(), &c, &mut st, &req(op("lab")));
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(r.done, ["/etc/hosts names the 1 other machines on lab"]);
    let hosts = std::fs::read_to_string(etc.join("hosts")).unwrap();
    assert!(hosts.ends_with("192.168.140.4\tlab-4\n"), "{hosts}");
    let r = handle(&FakeSys::new(), &c, &mut st, &req(op("other")));
    assert_eq!(
        r.error.as_deref(),
        Some("this machine is not on the network other")
    );
}

#[test]
fn leases_are_renewed_keeping_the_address() {
    let t = tempfile::tempdir().unwrap();
    let c = control(t.path());
    let sys = FakeSys::new();
    renew_leases(&sys, &c);
    let calls = sys.calls();
    // eth1 is the private network's NIC: no DHCP there.
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].starts_with("spawn B2D_DHCP=renew busybox udhcpc -i eth0 "),
        "{calls:?}"
    );
    assert!(calls[0].ends_with("-s /sbin/b2d-init"), "{calls:?}");
}

#[test]
fn a_busy_share_stops_the_suspend_and_what_was_unmounted_comes_back() {
    let t = tempfile::tempdir().unwrap();
    let c = control(t.path());
    let sys = FakeSys::new();
    let root = t.path().join("root");
    sys.fail_on_errno(
        &format!("umount {}", root.join("srv").display()),
        libc::EBUSY,
    );
    let mut st = State::default();
    let r = handle(&sys, &c, &mut st, &req(Op::Suspend));
    let e = r.error.unwrap();
    assert!(e.starts_with("share /srv is in use in the guest"), "{e}");
    assert!(e.contains("`b2d stop`"), "{e}");
    let calls = sys.calls();
    let last = calls.last().unwrap();
    assert!(
        last.starts_with("mount b2d0 /proc/self/fd/") && last.ends_with(" virtiofs - -"),
        "{last}"
    );
    assert_eq!(
        sys.mounted_through_fds().last().unwrap(),
        &root.join("home/alice").canonicalize().unwrap()
    );
    assert!(st.unmounted.is_empty());
}

#[test]
fn a_share_whose_device_does_not_come_back_is_named() {
    let t = tempfile::tempdir().unwrap();
    let c = control(t.path());
    let mut st = State {
        unmounted: vec![share("b2d0", "/home/alice")],
    };
    let sys = FakeSys::new();
    sys.fail_on("mount b2d0", std::io::ErrorKind::InvalidInput);
    let start = Instant::now();
    let r = handle(&sys, &c, &mut st, &req(Op::Resumed { unix_ms: 5 }));
    assert!(start.elapsed() >= Duration::from_millis(300));
    let e = r.error.unwrap();
    assert!(
        e.contains("share /home/alice: mount of virtiofs tag b2d0 failed"),
        "{e}"
    );
    let tries = sys
        .calls()
        .iter()
        .filter(|c| c.starts_with("mount"))
        .count();
    assert!(tries >= 2, "retried: {:?}", sys.calls());
}
