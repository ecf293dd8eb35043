use super::*;
use crate::sys::FakeSys;

const MOUNTINFO: &str = "\
1 0 0:2 / / rw - rootfs rootfs rw
20 1 0:20 / /proc rw,nosuid - proc proc rw
30 1 8:1 / /mnt/sda1 rw,relatime - ext4 /dev/sda1 rw
31 1 8:1 /var/lib/docker /var/lib/docker rw - ext4 /dev/sda1 rw
32 1 8:1 /var/lib/boot2docker /var/lib/boot2docker rw - ext4 /dev/sda1 rw
33 31 0:50 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw
34 1 8:1 /home/docker /home/docker rw - ext4 /dev/sda1 rw
35 1 0:51 / /mnt/my\\040stick rw - vfat /dev/sdb1 rw
36 1 0:22 / /run rw - tmpfs tmpfs rw
37 1 0:23 / /mnt2 rw - tmpfs tmpfs rw
garbage line
";

#[test]
fn mountinfo_parses_and_unescapes() {
    let m = parse_mountinfo(MOUNTINFO);
    assert_eq!(m.len(), 10);
    assert_eq!(m[2].mount_point, "/mnt/sda1");
    assert_eq!(m[2].source, "/dev/sda1");
    assert_eq!(m[2].fstype, "ext4");
    assert_eq!(m[5].parent, 31);
    assert_eq!(m[7].mount_point, "/mnt/my stick");
}

#[test]
fn unmount_plan_is_reverse_mount_order_of_data_mounts() {
    let plan = unmount_plan(&parse_mountinfo(MOUNTINFO), Path::new("/"));
    let p: Vec<String> = plan.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(
        p,
        vec![
            "/mnt/my stick",
            "/home/docker",
            "/var/lib/docker/overlay2/abc/merged",
            "/var/lib/boot2docker",
            "/var/lib/docker",
            "/mnt/sda1",
        ]
    );
}

#[test]
fn swaps_parse() {
    let s = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sda2 partition 1023996 0 -2\n/swap\\040file file 10 0 -3\n";
    assert_eq!(
        parse_swaps(s),
        vec![PathBuf::from("/dev/sda2"), PathBuf::from("/swap file")]
    );
}

fn event(kind: u16, code: u16, value: i32) -> Vec<u8> {
    let mut v = vec![0u8; 16];
    v.extend(kind.to_ne_bytes());
    v.extend(code.to_ne_bytes());
    v.extend(value.to_ne_bytes());
    v
}

#[test]
fn input_events_parse_and_detect_power_press() {
    let mut buf = event(EV_KEY, KEY_POWER, 1);
    buf.extend(event(0, 0, 0)); // EV_SYN
    buf.extend(event(EV_KEY, KEY_POWER, 0)); // release
    buf.extend([1, 2, 3]); // a partial record is ignored
    let ev = parse_input_events(&buf);
    assert_eq!(ev.len(), 3);
    assert_eq!(
        ev[0],
        InputEvent {
            kind: 1,
            code: 116,
            value: 1
        }
    );
    let presses: Vec<bool> = ev.iter().map(is_power_press).collect();
    assert_eq!(presses, vec![true, false, false]);
}

#[test]
fn power_button_found_by_name() {
    let d = tempfile::tempdir().unwrap();
    for (ev, name) in [
        ("event0", "Power Button"),
        ("event1", "AT Translated Set 2 keyboard"),
    ] {
        let p = d.path().join("class/input").join(ev).join("device");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("name"), format!("{name}\n")).unwrap();
    }
    assert_eq!(
        power_buttons(d.path(), Path::new("/dev")),
        vec![PathBuf::from("/dev/input/event0")]
    );
}

#[test]
fn finish_unmounts_swapoffs_then_powers_off() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("self")).unwrap();
    std::fs::write(d.path().join("self/mountinfo"), MOUNTINFO).unwrap();
    std::fs::write(
        d.path().join("swaps"),
        "Filename Type\n/dev/sda2 partition 1 0 -2\n",
    )
    .unwrap();
    let sys = FakeSys::new();
    sys.fail_on("umount /home/docker", std::io::ErrorKind::ResourceBusy);
    finish(&sys, d.path(), Path::new("/"), PowerAction::PowerOff);
    let calls = sys.calls();
    assert_eq!(calls.first().unwrap(), "sync");
    assert_eq!(calls[1], "umount /mnt/my stick");
    // A busy mount is detached instead.
    assert_eq!(calls[2], "umount /home/docker");
    assert_eq!(calls[3], "umount /home/docker detach");
    let i_sda1 = calls.iter().position(|c| c == "umount /mnt/sda1").unwrap();
    let i_swap = calls.iter().position(|c| c == "swapoff /dev/sda2").unwrap();
    assert!(i_sda1 < i_swap);
    assert_eq!(&calls[calls.len() - 2..], &["sync", "power PowerOff"]);
}

#[test]
fn mountinfo_with_optional_fields_and_no_source_parses() {
    let text = "\
25 1 8:1 / / rw,relatime shared:1 master:2 - ext4 /dev/sda1 rw
26 25 0:5 / /dev rw,nosuid shared:2 unbindable foo:3 - devtmpfs none rw,size=4k
27 25 0:6 / /mnt/a\\134b rw propagate_from:4 - tmpfs tmpfs rw
";
    let m = parse_mountinfo(text);
    assert_eq!(m.len(), 3);
    assert_eq!((m[0].id, m[0].parent), (25, 1));
    assert_eq!(m[1].fstype, "devtmpfs");
    assert_eq!(m[1].source, "none");
    assert_eq!(m[2].mount_point, "/mnt/a\\b");
}

#[test]
fn every_line_of_this_machines_mountinfo_parses() {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let m = parse_mountinfo(&text);
    assert_eq!(m.len(), text.lines().count(), "{text}");
    assert!(m.iter().any(|m| m.mount_point == "/"), "{text}");
}
