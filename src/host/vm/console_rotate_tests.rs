use super::*;
use crate::host::vm::console::{read, said_since_ready, Boot};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const READY: &str =
    r#"b2d-ready {"ms":9000,"ip":["10.0.2.15"],"data":"/mnt/sda1","ssh":true,"docker":true}"#;

fn boot_log() -> String {
    format!(
        "[    0.000000] Linux version 6.12.0\r\n\
         [    812ms] b2d-init INFO  b2d-init 0.1.0 starting\r\n\
         [    0.9] random kernel line\r\n\
         [   1503ms] b2d-init INFO  data disk /dev/sda: formatting\r\n\
         {READY}\r\n\
         b2d login: flood 1\r\n\
         [  20000ms] b2d-init ERROR service dockerd said: out of disk\r\n\
         flood 2\r\n"
    )
}

#[test]
fn the_head_carries_this_boot_s_agent_lines_and_its_ready_line() {
    let log = format!("{}{}", marker(5, 10), boot_log());
    let h = head(&log, 64 << 10);
    assert_eq!(
        h,
        format!(
            "[    812ms] b2d-init INFO  b2d-init 0.1.0 starting\n\
             [   1503ms] b2d-init INFO  data disk /dev/sda: formatting\n\
             {READY}\n\
             [  20000ms] b2d-init ERROR service dockerd said: out of disk\n"
        )
    );
    let rotated = marker(9999, h.len()) + &h + "flood 3\n";
    assert!(matches!(read(&rotated), Boot::Ready(_)));
    assert_eq!(
        said_since_ready(&rotated, "dockerd").as_deref(),
        Some("out of disk")
    );
    // Before the ready line: the agent's lines so far, for `up`'s wait.
    let booting = "[ 5ms] b2d-init INFO  modules\nnoise\n[ 6ms] b2d-init INFO  disk\n";
    assert_eq!(
        read(&head(booting, 1024)),
        Boot::Booting {
            last: Some("disk".into())
        }
    );
    // A line too long to be the agent's is never carried.
    let long = format!("[ 7ms] b2d-init INFO  {}\n", "x".repeat(LINE_MAX));
    assert_eq!(head(&long, 1 << 20), "");
}

#[test]
fn the_head_is_bounded_and_keeps_the_ready_line_and_the_latest_lines() {
    let mut log = String::new();
    for i in 0..5000 {
        log += &format!("[ {i}ms] b2d-init INFO  before {i:05}\n");
    }
    log += READY;
    log += "\n";
    for i in 0..5000 {
        log += &format!("[ {i}ms] b2d-init WARN  after {i:05}\n");
    }
    let h = head(&log, 16 << 10);
    assert!(h.len() <= 16 << 10, "{}", h.len());
    assert!(h.contains(READY));
    assert!(h.contains("before 04999\n") && h.contains("after 04999\n"));
    assert!(!h.contains("before 00000") && !h.contains("after 00000"));
    let before = h.lines().filter(|l| l.contains("before")).count();
    let after = h.lines().filter(|l| l.contains("after")).count();
    assert!(before > 100 && after > 100, "{before} {after}");
    // Order kept: the boot, the ready line, what came after.
    let r = h.find(READY).unwrap();
    assert!(h.rfind("before").unwrap() < r && h.find("after").unwrap() > r);
}

#[test]
fn a_marker_says_how_much_head_follows() {
    let m = marker(1_572_864, 812);
    assert!(m.ends_with('\n') && m.lines().count() == 1);
    assert!(m.contains("1572864 bytes before this are in serial.log.1"));
    assert_eq!(parse_marker(m.trim_end()), Some(812));
    assert_eq!(parse_marker("[    1.0] Linux"), None);
    assert!(wire::parse_line(&m).is_none() && Ready::parse_line(&m).is_none());
    let log = format!("{}{}after\n", marker(1, 4), "head");
    assert_eq!(&log[carried_len(log.as_bytes()) as usize..], "after\n");
    assert_eq!(carried_len(b"[ 0.0] Linux\n"), 0);
    assert_eq!(carried_len(b""), 0);
}

fn small() -> Limits {
    Limits {
        cap: 128 << 10,
        rotate_at: 32 << 10,
        head_max: 4 << 10,
        settle: Duration::from_millis(5),
    }
}

/// For the flood: the room between a rotation's start and the cap is
/// what the writer may add while the keeper waits for a core (over a
/// second of this flood's rate), so a loaded test host does not fail a
/// keeper that is right.
fn flood_limits() -> Limits {
    Limits {
        cap: 1 << 20,
        rotate_at: 48 << 10,
        ..small()
    }
}

fn flooded(path: &Path, lines: usize) -> String {
    let mut log = boot_log();
    for i in 0..lines {
        log += &format!("flood {i:08} ..................................\n");
    }
    std::fs::write(path, &log).unwrap();
    log
}

#[test]
fn a_full_log_is_swapped_for_one_that_starts_with_the_head() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("serial.log");
    let mut asked = Vec::new();
    let mut reopen = |p: &Path| {
        asked.push(p.to_path_buf());
        Ok(())
    };
    assert_eq!(rotate_if_due(&path, small(), &mut reopen).unwrap(), None);
    std::fs::write(&path, boot_log()).unwrap();
    assert_eq!(rotate_if_due(&path, small(), &mut reopen).unwrap(), None);
    let old = flooded(&path, 1000);
    let r = rotate_if_due(&path, small(), &mut reopen).unwrap().unwrap();
    assert_eq!(
        r,
        Rotated {
            moved: old.len() as u64,
            copied: None
        }
    );
    assert_eq!(asked, [t.path().join("serial.log.next")]);
    assert_eq!(std::fs::read_to_string(previous(&path)).unwrap(), old);
    let new = std::fs::read_to_string(&path).unwrap();
    let h = head(&old, small().head_max);
    assert_eq!(new, marker(old.len() as u64, h.len()) + &h);
    assert!(!t.path().join("serial.log.next").exists());
}

#[test]
fn when_qemu_cannot_switch_the_log_is_copied_and_cut_in_place() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("serial.log");
    let old = flooded(&path, 1000);
    // QEMU's handle on the file, appending as the chardev does.
    let mut qemu = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let mut refuse = |_: &Path| Err(io::Error::other("QMP chardev-change: not supported"));
    let r = rotate_if_due(&path, small(), &mut refuse).unwrap().unwrap();
    assert_eq!(
        r.copied.as_deref(),
        Some("QMP chardev-change: not supported")
    );
    assert_eq!(std::fs::read_to_string(previous(&path)).unwrap(), old);
    qemu.write_all(b"after the cut\n").unwrap();
    let new = std::fs::read_to_string(&path).unwrap();
    assert!(new.starts_with(MARKER), "{new}");
    assert!(new.ends_with(&format!("{READY}\n[  20000ms] b2d-init ERROR service dockerd said: out of disk\nafter the cut\n")), "{new}");
    assert!(!t.path().join("serial.log.next").exists());
}

/// A "QEMU" that appends numbered lines to the log as fast as a serial
/// console under TCG, and whose console can be switched to another file.
#[test]
fn a_flood_never_takes_the_log_past_its_cap_and_loses_nothing_at_a_swap() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("serial.log");
    std::fs::write(&path, boot_log()).unwrap();
    let open = |p: &Path| {
        std::fs::OpenOptions::new()
            .append(true)
            .open(p)
            .map(|f| (f, p.to_path_buf()))
    };
    let qemu = Arc::new(Mutex::new(open(&path).unwrap()));
    let running = Arc::new(AtomicBool::new(true));
    let keeper = {
        let (path, qemu, running) = (path.clone(), qemu.clone(), running.clone());
        std::thread::spawn(move || {
            let mut reopen = |p: &Path| {
                *qemu.lock().unwrap() = open(p)?;
                Ok(())
            };
            let said = Mutex::new(Vec::new());
            let alive = || running.load(Ordering::SeqCst);
            keep(&path, flood_limits(), &alive, &mut reopen, &|l| {
                said.lock().unwrap().push(l.to_string())
            })
            .unwrap();
            said.into_inner().unwrap()
        })
    };
    let (mut largest, mut n) = (0, 0u32);
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_millis(1500) {
        for _ in 0..8 {
            let line = format!("flood {n:08} ............................................\n");
            qemu.lock().unwrap().0.write_all(line.as_bytes()).unwrap();
            n += 1;
        }
        largest = largest.max(std::fs::metadata(&path).map_or(0, |m| m.len()));
        std::thread::sleep(Duration::from_millis(1));
    }
    running.store(false, Ordering::SeqCst);
    let said = keeper.join().unwrap();
    assert!(said.len() >= 3, "{} rotations: {said:?}", said.len());
    assert!(said.iter().all(|l| l.starts_with("console log rotated: ")));
    assert!(
        largest <= flood_limits().cap,
        "the log reached {largest} bytes"
    );
    // The boot is still read off the log, and the latest line is there.
    let log = std::fs::read_to_string(&path).unwrap();
    assert!(log.starts_with(MARKER));
    assert!(matches!(read(&log), Boot::Ready(_)));
    // The swap lost no line: serial.log.1 ends where serial.log goes on.
    let number = |l: &str| l.strip_prefix("flood ")?.get(..8)?.parse::<u32>().ok();
    let before = std::fs::read_to_string(previous(&path)).unwrap();
    let last_before = before.lines().rev().find_map(number).unwrap();
    let first_after = log.lines().filter_map(number).next().unwrap();
    assert_eq!(first_after, last_before + 1);
    let all: Vec<u32> = log.lines().filter_map(number).collect();
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(*all.last().unwrap(), n - 1);
}
