//! End-to-end: boot the real ISO in QEMU and assert from outside — ssh as
//! `docker` with the key alone, the docker CLI inside, the serial console,
//! and the disk images afterwards. Timeouts are planned for TCG.

use qemu_tests::fixture::{self, data_disk, ext4_header};
use qemu_tests::{DiskBus, Nic, Vm, VmSpec};
use std::time::Duration;
use test_support::{keygen, run, sha256};

const READY: Duration = Duration::from_secs(300);
/// Prints `yes` when /mnt/sda1 is a mount point (no util-linux needed).
const MOUNTED_SDA1: &str = "awk '$2==\"/mnt/sda1\"{print \"yes\"; exit}' /proc/mounts";

fn boot(
    spec: &VmSpec,
    dir: &std::path::Path,
    key: Option<&std::path::Path>,
) -> (Vm, serde_json::Value) {
    let mut vm = Vm::boot(spec, dir);
    vm.ssh_key = key.map(|k| k.to_path_buf());
    let ready = vm.ready(READY);
    eprintln!(
        "ready after {:.1}s wall: {}",
        ready.wall.as_secs_f64(),
        ready.json
    );
    (vm, ready.json)
}

fn assert_docker_host(vm: &Vm) {
    assert_eq!(vm.ssh_ok(MOUNTED_SDA1).trim(), "yes");
    let src = vm.ssh_ok("awk '$2==\"/var/lib/docker\"{print $1}' /proc/mounts");
    assert!(
        src.contains("sda1"),
        "/var/lib/docker is not on the data disk: {src:?}"
    );
    let info = vm.ssh_ok("docker info --format '{{.ServerVersion}} {{.DockerRootDir}}'");
    assert!(info.trim().ends_with("/var/lib/docker"), "{info}");
    vm.ssh_ok("sudo -n true");
}

/// What the agent printed on a first boot is for people: no Rust Debug
/// output (`Some(..)`, `None`, `Struct { .. }`), and hardware this VM does
/// not have (Hyper-V, VirtualBox, SSE4.2 crc32c) is no warning.
fn assert_console_reads_well(serial: &str) {
    let lines: Vec<_> = b2d::wire::console::lines(serial).collect();
    assert!(lines.len() > 10, "too few agent lines:\n{serial}");
    qemu_tests::fixture::assert_no_debug(serial);
    for l in &lines {
        let t = l.text;
        if l.level == b2d::wire::console::Level::Warn {
            for absent in ["hv_", "vbox", "crc32c_intel", "Hyper-V", "VirtualBox"] {
                assert!(!t.contains(absent), "absent hardware as a warning: {t}");
            }
        }
    }
}

/// The phases of a real ready line: every one ended, each after what it
/// waits for, and all by the line itself.
fn assert_phases(ready: &serde_json::Value) {
    let p: b2d::wire::ready::Phases = serde_json::from_value(ready["phases"].clone())
        .unwrap_or_else(|e| panic!("phases in {ready}: {e}"));
    let spans = p.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "initramfs",
            "modules",
            "disk",
            "network",
            "docker_modules",
            "keys",
            "shares",
            "certificate",
            "sshd",
            "containerd",
            "dockerd"
        ],
        "{ready}"
    );
    let end = |n: &str| spans.iter().find(|s| s.name == n).unwrap().end;
    let ms = ready["ms"].as_u64().unwrap();
    assert!(end("initramfs") > 0, "{ready}");
    for (before, after) in [
        ("initramfs", "modules"),
        ("modules", "disk"),
        ("modules", "network"),
        ("modules", "docker_modules"),
        ("disk", "keys"),
        ("docker_modules", "keys"),
        ("network", "keys"),
        ("keys", "shares"),
        ("shares", "certificate"),
        ("certificate", "sshd"),
        ("certificate", "containerd"),
        ("containerd", "dockerd"),
    ] {
        assert!(end(before) <= end(after), "{before} after {after}: {ready}");
    }
    assert!(end("dockerd") <= ms && end("sshd") <= ms, "{ready}");
}

#[test]
fn first_boot_reboot_and_clean_poweroff() {
    let t = tempfile::tempdir().unwrap();
    let key = keygen(t.path()).private;
    let disk = data_disk(t.path(), "disk.img", "4G", "raw", &key, &[]);
    let spec = VmSpec::new(fixture::iso()).disk(&disk, "raw", DiskBus::VirtioScsi);

    let (mut vm, ready) = boot(&spec, t.path(), Some(&key));
    assert_eq!(ready["data"], "/mnt/sda1");
    assert_eq!(ready["ssh"], true);
    assert_eq!(ready["docker"], true);
    assert_phases(&ready);
    assert_docker_host(&vm);
    assert_console_reads_well(&vm.serial());
    let t_ssh = vm.started.elapsed();
    let uuid = vm.ssh_ok("sudo blkid -s UUID -o value /dev/sda1");
    let mem = vm.ssh_ok(
        "awk '/MemTotal/{t=$2}/MemAvailable/{a=$2}END{print int((t-a)/1024)}' /proc/meminfo",
    );
    eprintln!(
        "first boot: ssh+docker checked at {:.1}s wall; RAM in use at ready: {} MiB",
        t_ssh.as_secs_f64(),
        mem.trim()
    );
    vm.ssh_ok("echo kept | sudo tee /var/lib/docker/b2d-test-marker >/dev/null && sync");

    // Power off from inside: QEMU must exit by itself, leaving a clean fs.
    let _ = vm.ssh("sudo poweroff");
    assert!(
        vm.wait_exit(Duration::from_secs(120)),
        "VM did not power off\n{}",
        vm.tail(40)
    );
    drop(vm);
    let hdr = ext4_header(&disk);
    assert!(hdr.contains("Filesystem state:         clean"), "{hdr}");
    assert!(
        !hdr.contains("needs_recovery"),
        "journal not clean after poweroff: {hdr}"
    );

    let (vm, ready) = boot(&spec, t.path(), Some(&key));
    assert_eq!(ready["data"], "/mnt/sda1");
    assert_eq!(
        vm.ssh_ok("sudo blkid -s UUID -o value /dev/sda1"),
        uuid,
        "reboot must not reformat"
    );
    assert_eq!(
        vm.ssh_ok("sudo cat /var/lib/docker/b2d-test-marker").trim(),
        "kept"
    );
    assert_docker_host(&vm);
}

#[test]
fn docker_machine_compat_disk_boots() {
    let t = tempfile::tempdir().unwrap();
    let key = keygen(t.path()).private;
    let disk = data_disk(
        t.path(),
        "dm.img",
        "2G",
        "raw",
        &key,
        &["--compat", "docker-machine"],
    );
    let spec = VmSpec::new(fixture::iso()).disk(&disk, "raw", DiskBus::VirtioScsi);
    let (vm, ready) = boot(&spec, t.path(), Some(&key));
    assert_eq!(ready["data"], "/mnt/sda1");
    assert_docker_host(&vm);
}

#[test]
fn virtualbox_like_machine_ahci_and_e1000() {
    let t = tempfile::tempdir().unwrap();
    let key = keygen(t.path()).private;
    let disk = data_disk(t.path(), "vbox.vmdk", "2G", "vmdk", &key, &[]);
    let mut spec = VmSpec::new(fixture::iso()).disk(&disk, "vmdk", DiskBus::Ahci);
    spec.nic = Nic::E1000;
    let (vm, ready) = boot(&spec, t.path(), Some(&key));
    assert_eq!(ready["data"], "/mnt/sda1");
    let driver = vm.ssh_ok("basename $(readlink /sys/class/net/eth0/device/driver)");
    assert_eq!(driver.trim(), "e1000", "NIC driver");
    assert_eq!(vm.ssh_ok(MOUNTED_SDA1).trim(), "yes");
}

#[test]
fn uefi_boot_reaches_ready() {
    assert!(
        std::path::Path::new(qemu_tests::vm::OVMF).is_file(),
        "apt-get install ovmf"
    );
    let t = tempfile::tempdir().unwrap();
    let key = keygen(t.path()).private;
    let disk = data_disk(t.path(), "disk.qcow2", "2G", "qcow2", &key, &[]);
    let mut spec = VmSpec::new(fixture::iso()).disk(&disk, "qcow2", DiskBus::VirtioScsi);
    spec.uefi = true;
    let (vm, ready) = boot(&spec, t.path(), Some(&key));
    assert_eq!(ready["data"], "/mnt/sda1");
    assert_eq!(
        vm.ssh_ok("test -d /sys/firmware/efi && echo efi").trim(),
        "efi"
    );
}

#[test]
fn no_disk_runs_from_ram_and_says_so() {
    let t = tempfile::tempdir().unwrap();
    let spec = VmSpec::new(fixture::iso());
    let (vm, ready) = boot(&spec, t.path(), None);
    assert_eq!(ready["data"], serde_json::Value::Null);
    assert_eq!(ready["docker"], true);
    // No userdata means no key to ssh in with: assert what the console says.
    let serial = vm.serial().to_lowercase();
    assert!(serial.contains("running from ram"), "{}", vm.tail(40));
    assert!(serial.contains("docker state on tmpfs"), "{}", vm.tail(40));
}

#[test]
fn foreign_disk_beside_the_data_disk_is_untouched() {
    let t = tempfile::tempdir().unwrap();
    let key = keygen(t.path()).private;
    let disk = data_disk(t.path(), "disk.img", "2G", "raw", &key, &[]);
    let foreign = t.path().join("foreign.img");
    std::fs::File::create(&foreign)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    run(
        "mkfs.ext4",
        &["-q", "-F", "-L", "precious", foreign.to_str().unwrap()],
    );
    let before = sha256(&foreign);
    let spec = VmSpec::new(fixture::iso())
        .disk(&disk, "raw", DiskBus::VirtioScsi)
        .disk(&foreign, "raw", DiskBus::VirtioBlk);
    let (mut vm, ready) = boot(&spec, t.path(), Some(&key));
    assert_eq!(ready["data"], "/mnt/sda1");
    // The guest saw the foreign disk and chose to leave it alone.
    assert!(
        vm.serial()
            .contains("/dev/vda: 1073741824 bytes: not ours, left alone"),
        "{}",
        vm.tail(40)
    );
    let _ = vm.ssh("sudo poweroff");
    assert!(vm.wait_exit(Duration::from_secs(120)));
    drop(vm);
    assert_eq!(sha256(&foreign), before, "the foreign disk was written");
}

/// A power cut in the first minute used to leave zero-length host keys
/// (written without fsync, lost to delayed allocation); sshd then failed
/// at every restart. The next boot must find them broken and make new ones.
#[test]
fn broken_host_keys_after_a_power_cut_are_regenerated() {
    let t = tempfile::tempdir().unwrap();
    let key = keygen(t.path()).private;
    let disk = data_disk(t.path(), "disk.img", "2G", "raw", &key, &[]);
    let spec = VmSpec::new(fixture::iso()).disk(&disk, "raw", DiskBus::VirtioScsi);

    let (vm, ready) = boot(&spec, t.path(), Some(&key));
    assert_eq!(ready["ssh"], true);
    // What the power cut left: every key file empty, on the disk.
    vm.ssh_ok(
        "sudo sh -c 'for f in /var/lib/boot2docker/ssh/ssh_host_*; do : > \"$f\"; done; sync'",
    );
    let sizes = vm.ssh_ok("sudo sh -c 'wc -c /var/lib/boot2docker/ssh/ssh_host_*'");
    assert!(sizes.contains("0 total"), "{sizes}");
    drop(vm); // SIGKILL: no shutdown, no unmount

    let (vm, ready) = boot(&spec, t.path(), Some(&key));
    assert_eq!(ready["ssh"], true, "{}", vm.tail(40));
    assert!(
        vm.serial().contains("is broken: the private key is empty"),
        "{}",
        vm.tail(40)
    );
    let sizes = vm.ssh_ok(
        "sudo sh -c 'for f in /var/lib/boot2docker/ssh/ssh_host_*; do test -s \"$f\" || echo empty \"$f\"; done'",
    );
    assert_eq!(sizes.trim(), "", "keys still empty after the repair");
    let fp = vm.ssh_ok("sudo ssh-keygen -lf /var/lib/boot2docker/ssh/ssh_host_ed25519_key.pub");
    assert!(fp.contains("ED25519"), "{fp}");
}
