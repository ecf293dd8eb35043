use super::*;
use crate::sys::FakeSys;

fn setup() -> (tempfile::TempDir, Config) {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    let mut cfg = Config::under(r);
    cfg.kernel_release = Some("6.12.0-test".into());
    let mdir = r.join("lib/modules/6.12.0-test");
    std::fs::create_dir_all(&mdir).unwrap();
    std::fs::write(
        mdir.join("modules.dep"),
        "kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz\nkernel/fs/jbd2/jbd2.ko.xz:\nkernel/crypto/crc32c_generic.ko.xz:\nkernel/net/bridge/bridge.ko.xz:\n",
    )
    .unwrap();
    std::fs::write(mdir.join("modules.softdep"), "softdep ext4 pre: crc32c\n").unwrap();
    std::fs::write(mdir.join("modules.alias"), "alias crc32c crc32c_generic\n").unwrap();
    std::fs::create_dir_all(r.join("etc/b2d")).unwrap();
    std::fs::write(r.join("etc/b2d/modules"), "ext4\n").unwrap();
    std::fs::write(r.join("etc/b2d/modules.docker"), "bridge\n").unwrap();
    std::fs::create_dir_all(r.join("proc")).unwrap();
    std::fs::write(
        r.join("proc/cmdline"),
        "console=ttyS0 b2d.hostname=testbox\n",
    )
    .unwrap();
    let eth = r.join("sys/class/net/eth0");
    std::fs::create_dir_all(eth.join("device")).unwrap();
    std::fs::write(eth.join("type"), "1\n").unwrap();
    std::fs::create_dir_all(&cfg.state_dir).unwrap();
    std::fs::create_dir_all(cfg.state_dir.join("log")).unwrap();
    std::fs::write(cfg.state_dir.join("bootsync.sh"), "true\n").unwrap();
    std::fs::write(cfg.state_dir.join("profile"), "EXTRA_ARGS='--debug'\n").unwrap();
    (d, cfg)
}

/// The host's per-boot config `json` where QEMU's fw_cfg shows it;
/// returns its file.
fn host_config(cfg: &Config, json: &str) -> PathBuf {
    let fw = cfg
        .sys_root
        .join("firmware/qemu_fw_cfg/by_name")
        .join(crate::wire::guest_config::FW_CFG_NAME);
    std::fs::create_dir_all(&fw).unwrap();
    std::fs::write(fw.join("raw"), json).unwrap();
    fw.join("raw")
}

fn first(calls: &[String], prefix: &str) -> usize {
    calls
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no call starting with {prefix:?} in {calls:#?}"))
}

#[test]
fn boot_plan_runs_in_design_order() {
    let (_d, cfg) = setup();
    let sys = FakeSys::new();
    let b = prepare_system(&sys, &cfg).unwrap();
    let calls = sys.calls();
    let root = cfg.root.display().to_string();
    let calls: Vec<String> = calls.iter().map(|c| c.replace(&root, "")).collect();

    // Early mounts first, proc first.
    assert_eq!(calls[0], "mount proc /proc proc nosuid|nodev|noexec -");
    // Modules after the early mounts, deps first (crc32c by softdep).
    let m0 = first(&calls, "finit_module");
    assert!(
        m0 > 0
            && calls[..m0]
                .iter()
                .all(|c| c.starts_with("mount ") || c.starts_with("mknod ")),
        "{calls:#?}"
    );
    // No data disk here: Docker's state goes on tmpfs.
    let ram = first(&calls, "mount tmpfs /var/lib/docker tmpfs - mode=0711");
    assert!(ram > m0);
    let mods: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("finit_module"))
        .collect();
    assert_eq!(
        mods,
        vec![
            "finit_module /lib/modules/6.12.0-test/kernel/crypto/crc32c_generic.ko.xz",
            "finit_module /lib/modules/6.12.0-test/kernel/fs/jbd2/jbd2.ko.xz",
            "finit_module /lib/modules/6.12.0-test/kernel/fs/ext4/ext4.ko.xz",
            "finit_module /lib/modules/6.12.0-test/kernel/net/bridge/bridge.ko.xz",
        ]
    );
    // Network after the boot's modules; Docker's modules beside it, done
    // before the host keys; host keys, hostname, bootsync after network.
    let net = first(&calls, "run busybox ip link set dev lo up");
    assert!(
        first(
            &calls,
            "finit_module /lib/modules/6.12.0-test/kernel/fs/ext4"
        ) < net
    );
    let bridge = first(
        &calls,
        "finit_module /lib/modules/6.12.0-test/kernel/net/bridge",
    );
    let dhcp = first(&calls, "run busybox udhcpc -i eth0");
    let host = first(&calls, "sethostname testbox");
    let sync = first(&calls, "run_bounded 120s /bin/sh");
    assert!(
        bridge < host && net < dhcp && dhcp < host && host < sync,
        "{calls:#?}"
    );
    // The host keys were made (in process, no tool run) for sshd's -h.
    assert_eq!(b.host_keys.len(), 2);
    assert!(b
        .host_keys
        .iter()
        .all(|k| k.starts_with(&cfg.state_dir) && k.is_file()));
    assert!(
        !calls.iter().any(|c| c.contains("ssh-keygen")),
        "{calls:#?}"
    );
    assert_eq!(sync, calls.len() - 1);

    assert_eq!(b.hostname, "testbox");
    assert_eq!(b.profile.get("EXTRA_ARGS"), Some("--debug"));
    assert!(cfg.root.join("run/sshd").is_dir());
    assert!(cfg.state_dir.join("log").is_dir());
    // Root-only, however the directories were found (setup made them 0755).
    use std::os::unix::fs::PermissionsExt;
    for d in [cfg.state_dir.clone(), cfg.state_dir.join("log")] {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
    let services = service_list(&cfg, &b);
    assert_eq!(services[2].name, "dockerd");
    assert_eq!(services[2].argv.last().unwrap(), "--debug");
}

#[test]
fn nodisk_runs_from_ram_and_failed_modules_do_not_stop_the_boot() {
    let (_d, cfg) = setup();
    std::fs::write(cfg.proc_root.join("cmdline"), "b2d.nodisk\n").unwrap();
    std::fs::remove_file(cfg.lib_modules.join("6.12.0-test/modules.dep")).unwrap();
    let sys = FakeSys::new();
    let b = prepare_system(&sys, &cfg).unwrap();
    assert!(b.disk.is_none());
    assert_eq!(b.data(), None);
    assert!(!sys.calls().iter().any(|c| c.starts_with("finit_module")));
    assert!(sys.calls().iter().any(|c| c == "sethostname b2d"));
}

#[test]
fn failed_early_mount_is_fatal_and_names_the_mount() {
    let (_d, cfg) = setup();
    let sys = FakeSys::new();
    sys.fail_on("mount devtmpfs", std::io::ErrorKind::PermissionDenied);
    let e = prepare_system(&sys, &cfg).unwrap_err();
    assert!(e.to_string().contains("devtmpfs"), "{e}");
}

#[test]
fn the_host_s_engine_settings_reach_daemon_json_and_dockerd_every_boot() {
    let (_d, cfg) = setup();
    let raw = host_config(
        &cfg,
        r#"{"shares":[],"engine":{"daemon":{"labels":["env=dev"]},"env":{"HTTP_PROXY":"http://10.0.2.2:3128"}}}"#,
    );
    let b = prepare_system(&FakeSys::new(), &cfg).unwrap();
    let daemon = std::fs::read_to_string(cfg.etc.join("docker/daemon.json")).unwrap();
    assert!(daemon.contains("\"env=dev\""), "{daemon}");
    let services = service_list(&cfg, &b);
    assert!(services[2]
        .env
        .contains(&("HTTP_PROXY".into(), "http://10.0.2.2:3128".into())));

    // The next boot has no fw_cfg (another hypervisor): the kept copy.
    std::fs::remove_file(cfg.etc.join("docker/daemon.json")).unwrap();
    std::fs::remove_file(raw).unwrap();
    let b = prepare_system(&FakeSys::new(), &cfg).unwrap();
    assert_eq!(
        std::fs::read_to_string(cfg.etc.join("docker/daemon.json")).unwrap(),
        daemon
    );
    assert_eq!(
        b.docker_env,
        vec![("HTTP_PROXY".to_string(), "http://10.0.2.2:3128".to_string())]
    );
}

#[test]
fn a_private_network_nic_gets_its_address_instead_of_dhcp_and_peers_are_named() {
    let (_d, cfg) = setup();
    host_config(
        &cfg,
        r#"{"shares":[],"network":{"network":"lab","mac":"02:b2:1f:3c:8c:01","address":"192.168.140.1","prefix":24,"peers":[{"name":"lab-2","address":"192.168.140.2"}]}}"#,
    );
    std::fs::write(
        cfg.sys_root.join("class/net/eth0/address"),
        "52:54:00:12:34:56\n",
    )
    .unwrap();
    let eth1 = cfg.sys_root.join("class/net/eth1");
    std::fs::create_dir_all(eth1.join("device")).unwrap();
    std::fs::write(eth1.join("type"), "1\n").unwrap();
    std::fs::write(eth1.join("address"), "02:b2:1f:3c:8c:01\n").unwrap();
    let sys = FakeSys::new();
    let b = prepare_system(&sys, &cfg).unwrap();
    let calls = sys.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("run busybox udhcpc -i eth0 ")),
        "{calls:#?}"
    );
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("run busybox udhcpc -i eth1 ")),
        "no DHCP on the private NIC: {calls:#?}"
    );
    let addr = first(
        &calls,
        "run busybox ip addr replace 192.168.140.1/24 dev eth1",
    );
    assert!(addr < first(&calls, "run busybox ip link set dev eth1 up"));
    let hosts = std::fs::read_to_string(cfg.etc.join("hosts")).unwrap();
    assert!(hosts.contains("127.0.1.1\ttestbox\n"), "{hosts}");
    assert!(hosts.ends_with("\n192.168.140.2\tlab-2\n"), "{hosts}");
    assert_eq!(b.private.unwrap().network, "lab");
}
