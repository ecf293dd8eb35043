//! `prepare` over the recording fake and image files: which disk is
//! chosen, the order of kernel calls, what lands on the disk, and that
//! foreign disks are never written.

use super::*;
use crate::disk::journal;
use crate::disk::userdata::{self, Compat};
use crate::sys::{CmdOutput, FakeSys};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};

pub(super) const KEY: &[u8] = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0example me@host\n";
const GIB: u64 = 1 << 30;

pub(super) struct Rig {
    pub(super) dir: tempfile::TempDir,
    pub(super) sys: FakeSys,
}

impl Rig {
    pub(super) fn new() -> Self {
        Rig {
            dir: tempfile::tempdir().unwrap(),
            sys: FakeSys::new(),
        }
    }
    fn target(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    /// A sparse image named like a kernel disk, plus empty stand-ins for
    /// its partition nodes (the fake kernel "creates" them at once).
    pub(super) fn disk(&self, name: &str, size: u64, head: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        f.set_len(size).unwrap();
        f.write_all(head).unwrap();
        for n in [1, 2] {
            std::fs::File::create(format::partition_path(&p, n)).unwrap();
        }
        p
    }
    pub(super) fn opts(&self, devices: &[&PathBuf]) -> PrepareOptions {
        PrepareOptions {
            devices: devices.iter().map(|p| p.to_path_buf()).collect(),
            target: self.target(),
            sys_root: self.dir.path().join("sys"),
            dev_root: self.dir.path().join("dev"),
            no_format: false,
            failpoint: None,
        }
    }
}

/// Hash of a sparse file's content: its length and every data extent
/// (holes read as zeros and cannot change without becoming data).
pub(super) fn sha(p: &Path) -> Vec<u8> {
    use nix::unistd::{lseek, Whence};
    let mut f = std::fs::File::open(p).unwrap();
    let len = f.metadata().unwrap().len() as i64;
    let mut h = Sha256::new();
    h.update(len.to_le_bytes());
    let mut pos = 0i64;
    while pos < len {
        let Ok(start) = lseek(&f, pos, Whence::SeekData) else {
            break;
        };
        let end = lseek(&f, start, Whence::SeekHole).unwrap();
        let mut buf = vec![0u8; (end - start) as usize];
        f.seek(SeekFrom::Start(start as u64)).unwrap();
        f.read_exact(&mut buf).unwrap();
        h.update(start.to_le_bytes());
        h.update(&buf);
        pos = end;
    }
    h.finalize().to_vec()
}

pub(super) fn magic_archive() -> Vec<u8> {
    userdata::build(KEY, &[], Compat::B2d).unwrap()
}

fn strip(calls: Vec<String>, root: &Path) -> Vec<String> {
    let r = root.display().to_string();
    calls
        .into_iter()
        .map(|c| c.replace(&r, "R"))
        .filter(|c| !c.starts_with("device_size"))
        .collect()
}

#[test]
fn magic_disk_is_formatted_in_crash_safe_order() {
    let rig = Rig::new();
    let d = rig.disk("sda", 2 * GIB, &magic_archive());
    let out = prepare(&rig.sys, &rig.opts(&[&d])).unwrap();
    assert_eq!(out.action, Action::Formatted);
    assert_eq!(out.partition, Some(rig.dir.path().join("sda1")));
    assert_eq!(out.swap, Some(rig.dir.path().join("sda2")));
    assert_eq!(out.mountpoint, Some(rig.target().join("mnt/sda1")));
    let calls = strip(rig.sys.calls(), rig.dir.path());
    let expect = [
        "reread_partitions R/sda",
        "run mke2fs -q -F -t ext4 -L b2d-formatting -i 8192 -E lazy_itable_init=1,lazy_journal_init=1 R/sda1",
        "mount R/sda1 R/root/mnt/sda1 ext4 - -",
        "sync",
        "umount R/root/mnt/sda1",
        "run mkswap -L boot2dockerswap R/sda2",
        "run tune2fs -L boot2docker-data R/sda1",
        "sync",
        "mount R/sda1 R/root/mnt/sda1 ext4 - -",
        "mount R/root/mnt/sda1/var/lib/docker R/root/var/lib/docker - bind -",
        "mount R/root/mnt/sda1/var/lib/containerd R/root/var/lib/containerd - bind -",
        "mount R/root/mnt/sda1/var/lib/boot2docker R/root/var/lib/boot2docker - bind -",
        "mount R/root/mnt/sda1/home/docker R/root/home/docker - bind -",
    ];
    assert_eq!(calls, expect);
    // The fake mount left the populated tree in the mountpoint directory.
    let mnt = rig.target().join("mnt/sda1");
    assert_eq!(
        std::fs::read(mnt.join("home/docker/.ssh/authorized_keys")).unwrap(),
        KEY
    );
    assert_eq!(
        std::fs::read(mnt.join("var/lib/boot2docker/userdata.tar")).unwrap(),
        magic_archive()
    );
    // On disk: b2d's GPT, and the journal is cleared.
    let mut f = std::fs::File::open(&d).unwrap();
    let r = crate::disk::probe::probe(&mut f, 2 * GIB).unwrap();
    assert_eq!(r.table, Some(crate::disk::probe::TableKind::Gpt));
    assert!(journal::read(&mut f).unwrap().is_none());
}

#[test]
fn blank_disk_is_formatted_without_userdata() {
    let rig = Rig::new();
    let d = rig.disk("vda", 512 << 20, &[]);
    let out = prepare(&rig.sys, &rig.opts(&[&d])).unwrap();
    assert_eq!(out.action, Action::Formatted);
    assert_eq!(out.swap, None, "no swap under 1 GiB");
    assert!(!rig.sys.calls().iter().any(|c| c.contains("mkswap")));
    assert!(!rig
        .target()
        .join("mnt/vda1/var/lib/boot2docker/userdata.tar")
        .exists());
}

#[test]
fn interrupted_format_is_resumed_with_the_journal_archive() {
    let rig = Rig::new();
    let d = rig.disk("sdb", 2 * GIB, &[]);
    // State after a power cut between the GPT and mkfs: journal + GPT, magic gone.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&d)
        .unwrap();
    journal::write(&mut f, &magic_archive(), 2 * GIB, &mut |_| Ok(())).unwrap();
    gpt::write(&mut f, &layout::layout(2 * GIB).unwrap()).unwrap();
    drop(f);
    let out = prepare(&rig.sys, &rig.opts(&[&d])).unwrap();
    assert_eq!(out.action, Action::Resumed);
    let keys = rig
        .target()
        .join("mnt/sdb1/home/docker/.ssh/authorized_keys");
    assert_eq!(std::fs::read(keys).unwrap(), KEY);
}

#[test]
fn journal_on_a_foreign_disk_is_ignored() {
    let rig = Rig::new();
    let d = rig.disk("sdc", 2 * GIB, &[]);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&d)
        .unwrap();
    journal::write(&mut f, &magic_archive(), 2 * GIB, &mut |_| Ok(())).unwrap();
    // The user later put their own filesystem on the whole disk.
    f.seek(SeekFrom::Start(1024 + 56)).unwrap();
    f.write_all(&0xEF53u16.to_le_bytes()).unwrap();
    drop(f);
    let before = sha(&d);
    let out = prepare(&rig.sys, &rig.opts(&[&d])).unwrap();
    assert_eq!(out.action, Action::None);
    assert_eq!(sha(&d), before);
}

#[test]
fn foreign_disks_are_byte_identical_and_explained() {
    let rig = Rig::new();
    let mut random = vec![0u8; 1 << 20];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&magic_archive());
    let mut bad_archive = magic_archive();
    bad_archive[1024 + 148] ^= 1; // break the .ssh header's checksum
    let disks = [
        rig.disk("sdd", GIB, &random),
        rig.disk("sde", GIB, &shifted),
        rig.disk("sdf", GIB, &bad_archive),
    ];
    let before: Vec<_> = disks.iter().map(|d| sha(d)).collect();
    let out = prepare(&rig.sys, &rig.opts(&disks.iter().collect::<Vec<_>>())).unwrap();
    assert_eq!(out.action, Action::None, "{out:?}");
    assert_eq!(out.notes.len(), 3, "{:?}", out.notes);
    assert!(
        out.notes
            .iter()
            .any(|n| n.contains("sdf") && n.contains("magic present but")),
        "{:?}",
        out.notes
    );
    let after: Vec<_> = disks.iter().map(|d| sha(d)).collect();
    assert_eq!(before, after);
    assert!(!rig
        .sys
        .calls()
        .iter()
        .any(|c| c.starts_with("run") || c.starts_with("mount")));
}

#[test]
fn largest_candidate_of_the_best_rule_wins() {
    let rig = Rig::new();
    let small = rig.disk("sda", GIB, &magic_archive());
    let big = rig.disk("sdb", 3 * GIB, &magic_archive());
    let blank = rig.disk("sdc", 8 * GIB, &[]);
    let before = [sha(&small), sha(&blank)];
    let out = prepare(&rig.sys, &rig.opts(&[&small, &blank, &big])).unwrap();
    assert_eq!(out.device, Some(big));
    assert_eq!(out.notes.len(), 2);
    assert_eq!([sha(&small), sha(&blank)], before);
}

#[test]
fn existing_data_disk_is_checked_and_mounted_not_formatted() {
    let rig = Rig::new();
    let d = rig.disk("sda", 2 * GIB, &magic_archive());
    prepare(&rig.sys, &rig.opts(&[&d])).unwrap();
    // Make the fake "filesystem" carry the committed label, as tune2fs would have.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&d)
        .unwrap();
    let start = layout::layout(2 * GIB).unwrap().data.start;
    let mut sb = vec![0u8; 1024];
    sb[56..58].copy_from_slice(&0xEF53u16.to_le_bytes());
    sb[120..120 + layout::DATA_LABEL.len()].copy_from_slice(layout::DATA_LABEL.as_bytes());
    f.seek(SeekFrom::Start(start + 1024)).unwrap();
    f.write_all(&sb).unwrap();
    drop(f);
    let before = sha(&d);
    let sys2 = FakeSys::new();
    let out = prepare(&sys2, &rig.opts(&[&d])).unwrap();
    assert_eq!(out.action, Action::Mounted);
    let calls = strip(sys2.calls(), rig.dir.path());
    assert_eq!(calls[0], "run e2fsck -p R/sda1");
    assert_eq!(calls[1], "mount R/sda1 R/root/mnt/sda1 ext4 - -");
    assert!(!calls
        .iter()
        .any(|c| c.contains("mke2fs") || c.contains("reread")));
    assert_eq!(sha(&d), before);
}

#[test]
fn failing_mkfs_is_an_error_naming_the_command() {
    let rig = Rig::new();
    let d = rig.disk("sda", 2 * GIB, &magic_archive());
    rig.sys.set_output(
        "run mke2fs",
        CmdOutput {
            code: Some(1),
            stderr: b"no space".to_vec(),
            ..Default::default()
        },
    );
    let e = prepare(&rig.sys, &rig.opts(&[&d])).unwrap_err().to_string();
    assert!(
        e.contains("mke2fs") && e.contains("no space") && e.contains("sda1"),
        "{e}"
    );
    assert!(e.contains("sda1 exited with status 1: no space"), "{e}");
    // The journal survives for the next boot to resume.
    let mut f = std::fs::File::open(&d).unwrap();
    let j = journal::read(&mut f).unwrap().unwrap();
    assert_eq!(j.archive, magic_archive());
    let mut head = [0u8; 2];
    f.seek(SeekFrom::Start(510)).unwrap();
    f.read_exact(&mut head).unwrap();
    assert_eq!(head, [0x55, 0xaa]);
}

#[test]
fn noformat_mounts_data_but_writes_nothing_else() {
    let rig = Rig::new();
    let magic = rig.disk("sda", 2 * GIB, &magic_archive());
    let blank = rig.disk("sdb", 2 * GIB, &[]);
    let before = [sha(&magic), sha(&blank)];
    let mut opts = rig.opts(&[&magic, &blank]);
    opts.no_format = true;
    let out = prepare(&rig.sys, &opts).unwrap();
    assert_eq!(out.action, Action::None);
    assert_eq!([sha(&magic), sha(&blank)], before);
    assert!(
        out.notes.iter().all(|n| n.contains("b2d.noformat")),
        "{:?}",
        out.notes
    );
    assert!(!rig
        .sys
        .calls()
        .iter()
        .any(|c| c.starts_with("run") || c.starts_with("mount")));
}

#[test]
fn outcomes_and_verdicts_read_as_sentences() {
    use crate::assert_readable;
    let p = |s: &str| Some(PathBuf::from(s));
    let outcome = |action, swap| PrepareOutcome {
        action,
        device: p("/dev/sda"),
        partition: p("/dev/sda1"),
        mountpoint: p("/mnt/sda1"),
        swap,
        notes: vec![],
    };
    let cases = [
        (
            outcome(Action::Formatted, p("/dev/sda2")).to_string(),
            "/dev/sda formatted; /dev/sda1 mounted on /mnt/sda1, swap partition /dev/sda2",
        ),
        (
            outcome(Action::Resumed, None).to_string(),
            "/dev/sda: interrupted format finished; /dev/sda1 mounted on /mnt/sda1",
        ),
        (
            outcome(Action::Mounted, p("/dev/sda2")).to_string(),
            "/dev/sda1 mounted on /mnt/sda1, swap partition /dev/sda2",
        ),
        (
            PrepareOutcome {
                action: Action::None,
                device: None,
                partition: None,
                mountpoint: None,
                swap: None,
                notes: vec![],
            }
            .to_string(),
            "no data disk in use: running from RAM",
        ),
        (
            Verdict::Data { partition: Some(1) }.to_string(),
            "b2d data filesystem (partition 1)",
        ),
        (
            Verdict::Data { partition: None }.to_string(),
            "b2d data filesystem (whole disk)",
        ),
        (
            Verdict::Resume { archive: vec![1] }.to_string(),
            "half-formatted by b2d: will finish",
        ),
        (
            Verdict::Magic { archive: vec![1] }.to_string(),
            "magic disk: will format",
        ),
        (Verdict::Blank.to_string(), "blank: will format"),
        (Action::Formatted.to_string(), "formatted"),
    ];
    for (got, want) in &cases {
        assert_eq!(got, want);
        assert_readable(got);
    }
}

#[test]
fn a_foreign_disk_is_described_in_words() {
    use crate::disk::probe::{FsKind, Report, TableKind};
    let f = tempfile::tempfile().unwrap();
    f.set_len(GIB).unwrap();
    let mut f = f;
    let report = Report {
        size: GIB,
        table: Some(TableKind::Gpt),
        partitions: vec![probe::Partition {
            number: 1,
            start: 1 << 20,
            size: GIB / 2,
            type_id: layout::LINUX_FS_GUID.into(),
            name: Some("home".into()),
        }],
        filesystems: vec![probe::Filesystem {
            offset: 1 << 20,
            partition: Some(1),
            kind: FsKind::Ext4,
            label: Some("Home".into()),
            uuid: None,
            version: None,
        }],
        blank: false,
    };
    let v = classify::classify(&mut f, GIB, &report).unwrap();
    let line = v.to_string();
    assert_eq!(
        line,
        "not ours, left alone: GPT partition table with 1 partition(s), \
         ext4 signature labelled \"Home\" in partition 1"
    );
    crate::assert_readable(&line);
}

/// A format over the fake runs to its end. Run alone, and by the test
/// below in a child process with `B2D_FAILPOINT` set.
#[test]
fn a_format_runs_to_its_end() {
    let rig = Rig::new();
    let d = rig.disk("sda", 2 * GIB, &magic_archive());
    let out = prepare(&rig.sys, &rig.opts(&[&d])).unwrap();
    assert_eq!(out.action, Action::Formatted);
}

/// The environment arms no failpoint: a boot's PID 1 gets each unknown
/// `KEY=VALUE` word of the kernel command line as a variable.
#[test]
fn the_environment_arms_no_failpoint() {
    for p in failpoint::POINTS {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "guest::disk::tests::a_format_runs_to_its_end",
                "--test-threads=1",
            ])
            .env("B2D_FAILPOINT", p.name())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains("1 passed"),
            "B2D_FAILPOINT={}: {:?}\n{said}",
            p.name(),
            out.status
        );
    }
}
