use super::*;
use crate::host::store::{saved_sample, Store};

const RAM: u64 = 16 * 4096;

fn suspended(t: &Path) -> (Machine, PathBuf) {
    let store = Store { root: t.into() };
    let m = saved_sample(&store);
    std::fs::write(m.disk(), b"disk").unwrap();
    std::fs::write(m.iso(), b"iso").unwrap();
    let qemu = t.join("qemu-system-x86_64");
    std::fs::write(&qemu, b"qemu").unwrap();
    std::fs::write(m.suspend_state(), b"QEVM state").unwrap();
    let ram = crate::host::vm::ram::memfd(RAM).unwrap();
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    ram.write_all_at(b"guest", 8192).unwrap();
    let src = PathBuf::from(format!("/proc/self/fd/{}", ram.as_raw_fd()));
    let ram_sha256 = crate::host::vm::ram::save(&src, RAM, &m.suspend_ram()).unwrap();
    let taken = Taken {
        ram_sha256,
        virtiofs: 1,
        unix_ms: 1234,
    };
    commit(&m, &qemu, "tcg", taken).unwrap();
    (m, qemu)
}

#[test]
fn a_committed_state_checks_out_until_something_changes() {
    let t = tempfile::tempdir().unwrap();
    let (m, qemu) = suspended(t.path());
    assert!(is_suspended(&m));
    let s = read(&m).unwrap().unwrap();
    assert_eq!(s.state_size, 10);
    assert_eq!(s.virtiofs, 1);
    assert_eq!(s.config, m.config);
    assert_eq!(check(&m, &s, &qemu, "tcg"), Ok(()));
    assert_eq!(verify_state(&m, &s), Ok(()));
    assert_eq!(s.ram_size, RAM);
    let ram = crate::host::vm::ram::memfd(RAM).unwrap();
    assert_eq!(load_ram(&m, &s, &ram), Ok(()));
    let mut got = [0u8; 5];
    use std::os::unix::fs::FileExt;
    ram.read_exact_at(&mut got, 8192).unwrap();
    assert_eq!(&got, b"guest");

    let e = check(&m, &s, &qemu, "kvm").unwrap_err();
    assert_eq!(
        e.to_string(),
        "it was saved under tcg, and this boot uses kvm"
    );

    std::fs::write(&qemu, b"qemu 9").unwrap();
    assert!(matches!(
        check(&m, &s, &qemu, "tcg"),
        Err(Unusable::QemuChanged { .. })
    ));

    // Same size, new bytes: the mtime tells.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(m.disk(), b"DISK").unwrap();
    let e = check(&m, &s, &qemu, "tcg").unwrap_err().to_string();
    assert!(
        e.ends_with("disk.img: the disk changed since the suspend"),
        "{e}"
    );
}

#[test]
fn a_damaged_or_cut_state_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let (m, _) = suspended(t.path());
    let s = read(&m).unwrap().unwrap();
    std::fs::write(m.suspend_state(), b"QEVM stAte").unwrap();
    let e = verify_state(&m, &s).unwrap_err().to_string();
    assert!(
        e.contains("suspend.state: the state's SHA-256 is not the one saved"),
        "{e}"
    );
    std::fs::write(m.suspend_state(), b"QEVM").unwrap();
    assert_eq!(
        verify_state(&m, &s).unwrap_err(),
        Unusable::Size {
            path: m.suspend_state(),
            found: 4,
            want: 10
        }
    );
    std::fs::remove_file(m.suspend_state()).unwrap();
    assert!(matches!(
        verify_state(&m, &s),
        Err(Unusable::Unreadable { .. })
    ));

    // The RAM: a changed byte, then a file cut short.
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(m.suspend_ram())
        .unwrap();
    f.write_all_at(b"G", 8192).unwrap();
    let ram = crate::host::vm::ram::memfd(RAM).unwrap();
    let e = load_ram(&m, &s, &ram).unwrap_err().to_string();
    assert!(
        e.contains("suspend.ram: the state's SHA-256 is not the one saved"),
        "{e}"
    );
    f.set_len(RAM / 2).unwrap();
    assert!(matches!(load_ram(&m, &s, &ram), Err(Unusable::Size { .. })));
}

#[test]
fn a_garbled_description_is_unusable_and_discard_forgets_all() {
    let t = tempfile::tempdir().unwrap();
    let (m, _) = suspended(t.path());
    std::fs::write(m.suspend_meta(), b"{\"version\":").unwrap();
    let e = read(&m).unwrap().unwrap_err().to_string();
    assert!(e.contains("suspend.json: "), "{e}");
    discard(&m);
    assert!(read(&m).is_none());
    assert!(!is_suspended(&m));
    assert!(!&m.suspend_state().exists());
    assert!(!&m.suspend_ram().exists());
}

#[test]
fn sha256_of_a_known_text() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("abc");
    std::fs::write(&p, b"abc").unwrap();
    assert_eq!(
        sha256(&p).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn a_loaded_state_is_no_suspend_and_waits_aside_for_the_agent() {
    let t = tempfile::tempdir().unwrap();
    let (m, _) = suspended(t.path());
    loaded(&m).unwrap();
    assert!(!is_suspended(&m));
    assert!(read(&m).is_none());
    assert!(!&m.suspend_state().exists() && !&m.suspend_ram().exists());
    let aside = m.dir.join("suspend.ram.loaded");
    assert!(aside.exists());
    remove_loaded(&m);
    assert!(!aside.exists());
    assert!(!m.dir.join("suspend.state.loaded").exists());
}
