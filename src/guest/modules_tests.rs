use super::*;
use crate::sys::FakeSys;

const DEP: &str = "\
kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz kernel/fs/mbcache.ko.xz kernel/lib/crc16.ko.xz
kernel/fs/jbd2/jbd2.ko.xz:
kernel/fs/mbcache.ko.xz:
kernel/lib/crc16.ko.xz:
kernel/crypto/crc32c_generic.ko.zst:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/scsi/virtio_scsi.ko:
kernel/a/cyc-a.ko: kernel/b/cyc_b.ko
kernel/b/cyc_b.ko: kernel/a/cyc-a.ko
";
const SOFTDEP: &str = "# comment\nsoftdep ext4 pre: crc32c post: foo\n";
const ALIAS: &str = "\
alias crypto-crc32c crc32c_generic
alias crc32c crc32c_generic
alias fs-ext4 ext4
alias pci:v00001AF4d00001000sv*sd*bc*sc*i* virtio_net
alias virtio:d00000008v* virtio_scsi
alias pci:v00008086d0000100[0-9Ee]sv*sd*bc*sc*i* e1000
";
const BUILTIN: &str = "kernel/drivers/virtio/virtio_pci.ko\nkernel/fs/overlayfs/overlay.ko\n";

fn ix() -> ModIndex {
    ModIndex::parse(DEP, SOFTDEP, ALIAS, BUILTIN)
}

/// `root/lib/modules/6.12.0` with the index files above.
fn modules_dir(root: &Path) -> std::path::PathBuf {
    let mdir = root.join("lib/modules/6.12.0");
    std::fs::create_dir_all(&mdir).unwrap();
    std::fs::write(mdir.join("modules.dep"), DEP).unwrap();
    std::fs::write(mdir.join("modules.softdep"), SOFTDEP).unwrap();
    std::fs::write(mdir.join("modules.alias"), ALIAS).unwrap();
    mdir
}

fn names(p: &Plan) -> Vec<&str> {
    p.load.iter().map(|(n, _, _)| n.as_str()).collect()
}

fn want(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| (n.to_string(), String::new()))
        .collect()
}

#[test]
fn ext4_pulls_crc32c_by_softdep_then_its_deps() {
    let p = resolve(&ix(), &want(&["ext4"]));
    assert_eq!(
        names(&p),
        vec!["crc32c_generic", "crc16", "mbcache", "jbd2", "ext4"]
    );
    assert_eq!(p.load[0].1, "kernel/crypto/crc32c_generic.ko.zst");
}

#[test]
fn no_duplicates_builtin_and_unknown() {
    let p = resolve(
        &ix(),
        &want(&[
            "virtio_net",
            "net-failover",
            "overlay",
            "virtio_pci",
            "nosuch",
        ]),
    );
    assert_eq!(names(&p), vec!["failover", "net_failover", "virtio_net"]);
    assert_eq!(p.unknown, vec!["nosuch"]);
}

#[test]
fn cycles_terminate() {
    let p = resolve(&ix(), &want(&["cyc_a"]));
    assert_eq!(names(&p), vec!["cyc_b", "cyc_a"]);
}

#[test]
fn globs_match_like_fnmatch() {
    assert!(glob_match(
        b"pci:v00001AF4d00001000sv*sd*bc*sc*i*",
        b"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"
    ));
    assert!(!glob_match(
        b"pci:v00001AF4d00001000sv*",
        b"pci:v00001AF4d00001001sv0"
    ));
    assert!(glob_match(b"a?c", b"abc"));
    assert!(glob_match(b"d0000100[0-9Ee]x", b"d0000100Ex"));
    assert!(!glob_match(b"d0000100[0-9Ee]x", b"d0000100Fx"));
    assert!(glob_match(b"[!a]b", b"cb"));
    assert!(!glob_match(b"[!a]b", b"ab"));
    assert!(glob_match(b"*", b""));
    assert!(!glob_match(b"a", b""));
}

#[test]
fn wanted_list_comments_and_params() {
    let w = parse_wanted("# disks\next4\n\n  virtio_scsi  # scsi\nloop max_loop=8\n");
    assert_eq!(
        w,
        vec![
            ("ext4".to_string(), String::new()),
            ("virtio_scsi".to_string(), String::new()),
            ("loop".to_string(), "max_loop=8".to_string())
        ]
    );
}

#[test]
fn load_all_coldplugs_and_treats_eexist_as_success() {
    let d = tempfile::tempdir().unwrap();
    let mdir = modules_dir(d.path());
    let dev = d.path().join("sys/bus/pci/devices/0000:00:03.0");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(
        dev.join("modalias"),
        "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00\n",
    )
    .unwrap();
    let vdev = d.path().join("sys/bus/virtio/devices/virtio1");
    std::fs::create_dir_all(&vdev).unwrap();
    std::fs::write(vdev.join("modalias"), "virtio:d00000008v00001AF4\n").unwrap();
    let wanted = d.path().join("etc/b2d/modules");
    std::fs::create_dir_all(wanted.parent().unwrap()).unwrap();
    std::fs::write(&wanted, "ext4\n").unwrap();

    let sys = FakeSys::new();
    sys.fail_on(
        &format!("finit_module {}/kernel/lib/crc16", mdir.display()),
        io::ErrorKind::AlreadyExists,
    );
    sys.fail_on(
        &format!("finit_module {}/kernel/fs/mbcache", mdir.display()),
        io::ErrorKind::InvalidData,
    );
    let r = load_all(
        &sys,
        &mdir,
        &wanted,
        &d.path().join("sys"),
        &d.path().join("none"),
    )
    .unwrap();
    assert_eq!(r.already, vec!["crc16"]);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].0, "mbcache");
    assert_eq!(
        r.loaded,
        vec![
            "crc32c_generic",
            "jbd2",
            "ext4",
            "failover",
            "net_failover",
            "virtio_net",
            "virtio_scsi"
        ]
    );
    let calls = sys.calls();
    assert_eq!(calls.len(), 9);
    assert_eq!(
        calls[0],
        format!(
            "finit_module {}/kernel/crypto/crc32c_generic.ko.zst",
            mdir.display()
        )
    );
}

#[test]
fn missing_modules_dep_names_the_path() {
    let d = tempfile::tempdir().unwrap();
    let e = ModIndex::load(d.path()).unwrap_err();
    assert!(e.to_string().contains("modules.dep"), "{e}");
}

#[test]
fn absent_hardware_is_one_quiet_line_not_a_failure() {
    let ix = ModIndex::parse(
        "kernel/drivers/hv/hv_vmbus.ko.xz:\n\
         kernel/drivers/scsi/hv_storvsc.ko.xz: kernel/drivers/hv/hv_vmbus.ko.xz\n\
         kernel/arch/x86/crypto/crc32c-intel.ko.xz:\n\
         kernel/drivers/net/e1000/e1000.ko.xz:\n\
         kernel/fs/isofs/isofs.ko.xz:\n",
        "",
        "",
        "",
    );
    let plan = resolve(
        &ix,
        &want(&["hv_storvsc", "crc32c_intel", "e1000", "isofs"]),
    );
    let sys = FakeSys::new();
    let m = Path::new("/m");
    sys.fail_on_errno("finit_module /m/kernel/drivers/hv/hv_vmbus", libc::ENODEV);
    sys.fail_on_errno("finit_module /m/kernel/arch/x86/crypto/crc32c", libc::ENXIO);
    sys.fail_on(
        "finit_module /m/kernel/drivers/net/e1000",
        io::ErrorKind::InvalidData,
    );
    let r = load(&sys, m, &plan);
    assert_eq!(r.absent, vec!["hv_vmbus", "hv_storvsc", "crc32c_intel"]);
    assert_eq!(r.loaded, vec!["isofs"]);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].0, "e1000");
    assert!(
        !sys.calls().iter().any(|c| c.contains("hv_storvsc")),
        "a module whose dependency has no hardware is not tried: {:?}",
        sys.calls()
    );
    let summary = r.to_string();
    assert_eq!(
        summary,
        "1 loaded, 0 already present, 1 failed (e1000), 3 without their hardware"
    );
    let absent = r.absent_line().unwrap();
    assert_eq!(
        absent,
        "modules: not loaded, their hardware is not present: hv_vmbus, hv_storvsc, crc32c_intel"
    );
    for line in [summary, absent] {
        crate::assert_readable(&line);
    }
    assert_eq!(LoadReport::default().absent_line(), None);
    assert_eq!(
        LoadReport::default().to_string(),
        "0 loaded, 0 already present, 0 failed"
    );
}

#[test]
fn named_and_after_ready_modules_load_with_what_they_need_and_no_coldplug() {
    let d = tempfile::tempdir().unwrap();
    let mdir = modules_dir(d.path());
    let sys = FakeSys::new();
    let r = load_named(&sys, &mdir, &["virtio_net"], "modules for a test").unwrap();
    assert_eq!(r.loaded, vec!["failover", "net_failover", "virtio_net"]);

    let list = d.path().join("modules.after");
    std::fs::write(&list, "# after ready\nvirtio_scsi\n").unwrap();
    let sys = FakeSys::new();
    let r = load_list(&sys, &mdir, &list, "after").unwrap();
    assert_eq!(r.loaded, vec!["virtio_scsi"]);
    assert_eq!(sys.calls().len(), 1, "{:?}", sys.calls());
    // A missing list loads nothing and is no error: the kernel still
    // loads a module on first use.
    let sys = FakeSys::new();
    let r = load_list(&sys, &mdir, &d.path().join("absent"), "after").unwrap();
    assert!(r.loaded.is_empty() && sys.calls().is_empty());
}

#[test]
fn a_device_whose_driver_comes_after_ready_is_not_coldplugged() {
    let d = tempfile::tempdir().unwrap();
    let mdir = modules_dir(d.path());
    for (dev, alias) in [
        (
            "pci/devices/0000:00:03.0",
            "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00",
        ),
        ("virtio/devices/virtio1", "virtio:d00000008v00001AF4"),
    ] {
        let p = d.path().join("sys/bus").join(dev);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("modalias"), format!("{alias}\n")).unwrap();
    }
    let wanted = d.path().join("modules");
    std::fs::write(&wanted, "").unwrap();
    let later = d.path().join("modules.after");
    std::fs::write(&later, "# after ready\nvirtio-scsi\n").unwrap();
    let sys = FakeSys::new();
    let r = load_all(&sys, &mdir, &wanted, &d.path().join("sys"), &later).unwrap();
    assert_eq!(r.loaded, vec!["failover", "net_failover", "virtio_net"]);
    let r = load_list(&sys, &mdir, &later, "after").unwrap();
    assert_eq!(r.loaded, vec!["virtio_scsi"]);
}
