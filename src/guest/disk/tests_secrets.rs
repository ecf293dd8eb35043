//! After a format, no copy of the userdata archive (it carries the host
//! key and the CA key) is left on the disk outside the data filesystem:
//! neither the journal's in the swap region nor the tail of the original
//! at byte 0 that the GPT did not cover.

use super::tests::{Rig, KEY};
use super::*;
use crate::disk::journal;
use crate::disk::userdata::{self, Compat, Extension};

const GIB: u64 = 1 << 30;
const SECRET: &[u8] = b"b2d-test-secret-7f3a9c";

/// A b2d archive with a private key of about 24 KiB, so that its tail lies
/// well past the 17 KiB of the primary GPT when the archive sits at 0.
fn archive_with_a_secret() -> Vec<u8> {
    let mut key = b"-----BEGIN OPENSSH PRIVATE KEY-----\n".to_vec();
    for i in 0..400 {
        key.extend_from_slice(format!("{i:04}").as_bytes());
        key.extend_from_slice(SECRET);
        key.extend_from_slice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx\n");
    }
    key.extend_from_slice(b"-----END OPENSSH PRIVATE KEY-----\n");
    let ext = Extension {
        name: "ssh_host_ed25519_key".into(),
        mode: 0o600,
        data: key,
    };
    let a = userdata::build(KEY, &[ext], Compat::B2d).unwrap();
    assert!(a.len() > 24 * 1024, "{} bytes", a.len());
    a
}

fn assert_no_secret_outside_the_data_partition(disk: &Path, size: u64, what: &str) {
    let l = layout::layout(size).unwrap();
    for (start, end) in [(0, l.data.start), (l.data.end, size)] {
        let found = test_support::find_bytes(disk, start, end, SECRET);
        assert_eq!(
            found, None,
            "{what}: the userdata's secret at byte {found:?}"
        );
    }
    let mut f = std::fs::File::open(disk).unwrap();
    assert_eq!(journal::read(&mut f).unwrap(), None, "{what}");
}

#[test]
fn a_format_leaves_no_copy_of_the_userdata_outside_the_data_filesystem() {
    for size in [2 * GIB, 512 << 20] {
        let rig = Rig::new();
        let d = rig.disk("sda", size, &archive_with_a_secret());
        let out = prepare(&rig.sys, &rig.opts(&[&d])).unwrap();
        assert_eq!(out.action, Action::Formatted);
        assert_no_secret_outside_the_data_partition(&d, size, &format!("{size} bytes"));
    }
}

#[test]
fn a_resumed_format_leaves_no_copy_either() {
    let rig = Rig::new();
    let size = 2 * GIB;
    let archive = archive_with_a_secret();
    let d = rig.disk("sdb", size, &archive);
    // Cut after the GPT: the journal and the table are there, the tail of
    // the original archive too.
    rig.sys.fail_on("run mke2fs", std::io::ErrorKind::Other);
    prepare(&rig.sys, &rig.opts(&[&d])).unwrap_err();
    let mut f = std::fs::File::open(&d).unwrap();
    assert_eq!(journal::read(&mut f).unwrap().unwrap().archive, archive);
    drop(f);

    let sys = crate::sys::FakeSys::new();
    let out = prepare(&sys, &rig.opts(&[&d])).unwrap();
    assert_eq!(out.action, Action::Resumed);
    assert_no_secret_outside_the_data_partition(&d, size, "resumed");
}

/// A 2 GiB disk as a power cut right after the commit leaves it: b2d's
/// GPT, the data filesystem already labelled `boot2docker-data`, swap made,
/// and the journal (archive and header) still there.
fn cut_after_commit(rig: &Rig, name: &str, archive: &[u8]) -> PathBuf {
    use std::io::{Seek, SeekFrom, Write};
    let size = 2 * GIB;
    let d = rig.disk(name, size, &[]);
    let l = layout::layout(size).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&d)
        .unwrap();
    journal::write(&mut f, archive, size, &mut |_| Ok(())).unwrap();
    gpt::write(&mut f, &l).unwrap();
    let mut put = |at: u64, bytes: &[u8]| {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(bytes).unwrap();
    };
    put(l.data.start + 1024 + 0x38, &0xEF53u16.to_le_bytes());
    put(l.data.start + 1024 + 0x78, layout::DATA_LABEL.as_bytes());
    let swap = l.swap.unwrap().start;
    put(swap + 1024, &1u32.to_le_bytes());
    put(swap + 1024 + 28, layout::SWAP_LABEL.as_bytes());
    put(swap + 4096 - 10, b"SWAPSPACE2");
    d
}

#[test]
fn a_journal_left_by_a_cut_after_the_commit_is_zeroed_at_the_next_mount() {
    let rig = Rig::new();
    let d = cut_after_commit(&rig, "sdc", &archive_with_a_secret());
    let out = prepare(&rig.sys, &rig.opts(&[&d])).unwrap();
    assert_eq!(out.action, Action::Mounted);
    assert_no_secret_outside_the_data_partition(&d, 2 * GIB, "mounted after the cut");
}

#[test]
fn noformat_leaves_even_a_stale_journal_alone() {
    let rig = Rig::new();
    let d = cut_after_commit(&rig, "sdd", &archive_with_a_secret());
    let before = super::tests::sha(&d);
    let mut opts = rig.opts(&[&d]);
    opts.no_format = true;
    assert_eq!(prepare(&rig.sys, &opts).unwrap().action, Action::Mounted);
    assert_eq!(super::tests::sha(&d), before, "b2d.noformat writes nothing");
}
