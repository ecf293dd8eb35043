//! `b2d-init prepare-disk` on real loop devices (root): a fresh magic disk
//! is formatted to the boot2docker layout with the key installed; the next
//! run mounts without reformatting; SIGKILL at every step of formatting
//! converges on the next run; foreign disks and hostile archives are left
//! byte-identical.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use test_support::loopdev::{Loop, Scratch};
use test_support::{run as sh, sha256 as sha};

const INIT: &str = env!("CARGO_BIN_EXE_b2d-init");
const B2D: &str = env!("CARGO_BIN_EXE_b2d");

/// A key pair in `dir`: the public key file and its line.
fn keygen(dir: &Path) -> (PathBuf, String) {
    let key = test_support::keygen(dir);
    let line = key.public_line();
    (key.public, line)
}

fn magic_disk(s: &Scratch, size: &str) -> (PathBuf, String) {
    let (pubkey, line) = keygen(s.path());
    let img = s.path().join("disk.img");
    sh(
        B2D,
        &[
            "disk",
            "create",
            img.to_str().unwrap(),
            "--size",
            size,
            "--ssh-key",
            pubkey.to_str().unwrap(),
        ],
    );
    (img, line)
}

fn prepare(s: &Scratch, dev: &str, failpoint: Option<&str>) -> Output {
    s.prepare(INIT, dev, failpoint)
}

fn prepare_ok(s: &Scratch, dev: &str) -> serde_json::Value {
    s.prepare_ok(INIT, dev)
}

fn blkid(dev: &str, tag: &str) -> String {
    // -p: read the device itself, not blkid's cache.
    let out = Command::new("blkid")
        .args(["-p", "-s", tag, "-o", "value", dev])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn assert_formatted(s: &Scratch, l: &Loop, key: &str) {
    assert_eq!(blkid(&l.part(1), "LABEL"), "boot2docker-data");
    assert_eq!(blkid(&l.part(1), "TYPE"), "ext4");
    assert_eq!(blkid(&l.part(2), "LABEL"), "boot2dockerswap");
    assert_eq!(blkid(&l.part(2), "TYPE"), "swap");
    let ak = s.target().join("home/docker/.ssh/authorized_keys");
    assert_eq!(std::fs::read_to_string(&ak).unwrap(), key);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&ak).unwrap().uid(), 1000);
    // b2d's state (keys, certificates, logs) is root's only.
    for d in ["var/lib/boot2docker", "var/lib/boot2docker/log"] {
        let mode = std::fs::metadata(s.target().join(d)).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{d}");
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    for d in [
        "mnt/",
        "var/lib/docker",
        "var/lib/containerd",
        "var/lib/boot2docker",
        "home/docker",
    ] {
        let want = s.target().join(d);
        assert!(
            mounts.lines().any(|m| m
                .split(' ')
                .nth(1)
                .is_some_and(|p| p.starts_with(want.to_str().unwrap()))),
            "{d} not mounted"
        );
    }
}

#[test]
fn magic_disk_is_formatted_then_mounted_without_reformatting() {
    let s = Scratch::new();
    let (img, key) = magic_disk(&s, "2G");
    let l = Loop::new(&img);
    let v = prepare_ok(&s, &l.dev);
    assert_eq!(v["action"], "formatted", "{v}");
    assert_eq!(v["partition"], l.part(1));
    assert_eq!(
        v["mountpoint"],
        s.target()
            .join(format!(
                "mnt/{}",
                Path::new(&l.part(1)).file_name().unwrap().to_str().unwrap()
            ))
            .to_str()
            .unwrap()
    );
    assert_formatted(&s, &l, &key);
    // boot2docker's mkfs options: -i 8192 and swap of disk/8 under 8 GiB.
    let tune = sh("tune2fs", &["-l", &l.part(1)]);
    let field = |k: &str| -> u64 {
        tune.lines()
            .find(|x| x.starts_with(k))
            .unwrap()
            .split(':')
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let bytes_per_inode = field("Block count:") * field("Block size:") / field("Inode count:");
    assert!(
        (7000..=9000).contains(&bytes_per_inode),
        "bytes per inode {bytes_per_inode}"
    );
    let swap_bytes: u64 = sh("blockdev", &["--getsize64", &l.part(2)])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(swap_bytes, 256 << 20);
    assert!(s
        .target()
        .join("var/lib/boot2docker/userdata.tar")
        .is_file());
    // No copy of the userdata is left before the data partition: not the
    // journal's in the swap partition, not the original's at byte 0.
    let swap_end = (1 << 20) + swap_bytes;
    assert_eq!(
        test_support::find_bytes(&img, 0, swap_end, key.trim_end().as_bytes()),
        None,
        "the userdata (its key) is still on the disk outside the data filesystem"
    );

    let uuid = blkid(&l.part(1), "UUID");
    s.unmount_all();
    let v = prepare_ok(&s, &l.dev);
    assert_eq!(v["action"], "mounted", "{v}");
    assert_eq!(
        blkid(&l.part(1), "UUID"),
        uuid,
        "second run must not reformat"
    );
    assert_formatted(&s, &l, &key);
}

#[test]
fn sigkill_at_every_step_of_formatting_converges() {
    for point in b2d::guest::disk::failpoint::POINTS.iter().map(|p| p.name()) {
        let s = Scratch::new();
        let (img, key) = magic_disk(&s, "2G");
        let l = Loop::new(&img);
        let out = prepare(&s, &l.dev, Some(point));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{point}: expected SIGKILL, got {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        s.unmount_all();
        let v = prepare_ok(&s, &l.dev);
        let action = v["action"].as_str().unwrap();
        let expected = if point == "commit" {
            "mounted"
        } else {
            "resumed"
        };
        assert_eq!(action, expected, "after a kill at {point}: {v}");
        assert_formatted(&s, &l, &key);
        // However the format ended, its journal's copy of the userdata is
        // zeroed: nothing of the archive is left in the swap partition.
        let swap_end = (1 << 20) + (256 << 20);
        assert_eq!(
            test_support::find_bytes(&img, 1 << 20, swap_end, key.trim_end().as_bytes()),
            None,
            "after a kill at {point}: the journal's archive is still in the swap partition"
        );
        // And the journal is gone: a third run only mounts.
        s.unmount_all();
        assert_eq!(prepare_ok(&s, &l.dev)["action"], "mounted", "{point}");
    }
}

fn assert_left_alone(s: &Scratch, img: &Path, what: &str) -> serde_json::Value {
    let before = sha(img);
    let l = Loop::new(img);
    let v = prepare_ok(s, &l.dev);
    assert_eq!(v["action"], "none", "{what}: {v}");
    drop(l);
    assert_eq!(sha(img), before, "{what} was modified");
    v
}

fn sparse(s: &Scratch, name: &str, size: u64) -> PathBuf {
    let p = s.path().join(name);
    std::fs::File::create(&p).unwrap().set_len(size).unwrap();
    p
}

#[test]
fn foreign_disks_stay_byte_identical() {
    let s = Scratch::new();
    let ext4 = sparse(&s, "ext4.img", 128 << 20);
    sh("mkfs.ext4", &["-q", "-F", ext4.to_str().unwrap()]);
    assert_left_alone(&s, &ext4, "unlabelled ext4");

    let gpt = sparse(&s, "gpt.img", 128 << 20);
    sh(
        "sgdisk",
        &["-n", "1:2048:+32M", "-c", "1:home", gpt.to_str().unwrap()],
    );
    assert_left_alone(&s, &gpt, "GPT disk");

    let dos = sparse(&s, "dos.img", 128 << 20);
    let mut c = Command::new("sfdisk")
        .args(["-q", dos.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\n,32M,83\n")
        .unwrap();
    assert!(c.wait().unwrap().success());
    assert_left_alone(&s, &dos, "DOS disk");

    let random = sparse(&s, "random.img", 128 << 20);
    sh(
        "dd",
        &[
            "if=/dev/urandom",
            &format!("of={}", random.display()),
            "bs=1M",
            "count=2",
            "conv=notrunc",
            "status=none",
        ],
    );
    assert_left_alone(&s, &random, "random bytes");

    // The magic one byte late: not a docker-machine disk.
    let (magic, _) = magic_disk(&s, "128M");
    let late = s.path().join("late.img");
    sh(
        "dd",
        &[
            &format!("if={}", magic.display()),
            &format!("of={}", late.display()),
            "bs=1",
            "seek=1",
            "count=8192",
            "status=none",
        ],
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(&late)
        .unwrap()
        .set_len(128 << 20)
        .unwrap();
    assert_left_alone(&s, &late, "magic at the wrong offset");
}

/// A magic disk whose archive (written by Python's tarfile, independent of
/// b2d) carries `extra`, a Python snippet adding hostile members to `t`.
fn hostile_disk(s: &Scratch, name: &str, extra: &str) -> PathBuf {
    let img = s.path().join(name);
    let script = format!(
        r#"
import io, tarfile
buf = io.BytesIO()
t = tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT)
def add(name, data=b"", kind=tarfile.REGTYPE, link="", mode=0o644):
    i = tarfile.TarInfo(name); i.type = kind; i.linkname = link; i.mode = mode; i.size = len(data)
    t.addfile(i, io.BytesIO(data) if data else None)
m = b"boot2docker, please format-me"
add(m.decode(), m)
{extra}
t.close()
open("{img}", "wb").write(buf.getvalue())
"#,
        img = img.display()
    );
    sh("python3", &["-c", &script]);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(128 << 20)
        .unwrap();
    img
}

#[test]
fn hostile_archives_write_nothing_and_say_why() {
    let s = Scratch::new();
    let outside = s.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let cases = [
        ("dotdot.img", "add('../../escaped', b'x')".to_string(), ".."),
        (
            "abs.img",
            format!("add('{}/abs', b'x')", outside.display()),
            "absolute",
        ),
        (
            "link.img",
            format!(
                "add('.ssh', kind=tarfile.SYMTYPE, link='{}')\nadd('.ssh/authorized_keys', b'k')",
                outside.display()
            ),
            "link",
        ),
    ];
    for (name, extra, why) in cases {
        let img = hostile_disk(&s, name, &extra);
        let v = assert_left_alone(&s, &img, name);
        let notes = v["notes"].to_string();
        assert!(
            notes.contains(why),
            "{name}: notes should say {why:?}: {notes}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "something was written outside"
    );
    assert!(!s.path().join("escaped").exists() && !Path::new("/escaped").exists());
}
