//! Power cuts while a machine is in use: during a container's fsynced
//! writes to a volume, and during `docker load`. After the next boot
//! dockerd starts, earlier images run, and every block the writer said
//! was on the disk is there.

use super::{docker, power_cut, up};
use crate::machines::Machine;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The writer: 64 KiB blocks of a known pattern into one volume file,
/// each `dd … conv=fsync`, then a line saying it is synced.
const WRITER: &str = "i=0; while true; do \
    yes \"block $i\" | head -c 65536 | \
    dd of=/data/blob bs=65536 seek=$i count=1 iflag=fullblock conv=notrunc,fsync 2>/dev/null || exit 1; \
    echo \"synced $i\"; i=$((i+1)); done";

/// Cut power while the writer runs, once it has said `at_least` blocks
/// are synced; boot again and check every block it said was synced.
/// Returns how many blocks were checked.
pub fn fsynced_writes(m: &Machine, at_least: usize) -> usize {
    docker(
        m,
        &format!("docker run -d --name writer -v data:/data bb sh -c '{WRITER}' >/dev/null"),
    );
    // Follow the writer's own word from the host, through the API.
    let mut follow = Command::new("bash");
    follow
        .args([
            "-c",
            &format!(
                "eval \"$(\"$B2D\" env {})\"; exec docker logs -f writer",
                m.name
            ),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    m.env(&mut follow);
    let mut child = follow.spawn().expect("bash");
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(n) = line
                .strip_prefix("synced ")
                .and_then(|n| n.parse::<usize>().ok())
            {
                let _ = tx.send(n);
            }
        }
    });
    let t0 = Instant::now();
    let mut synced = None;
    while synced.is_none_or(|n| n + 1 < at_least) {
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "the writer wrote {synced:?} blocks in 240 s"
        );
        if let Ok(n) = rx.recv_timeout(Duration::from_secs(1)) {
            synced = Some(n);
        }
    }
    power_cut(m);
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    // Every line that reached the host was printed after its fsync.
    let last = rx
        .try_iter()
        .chain(synced)
        .max()
        .expect("some block synced");
    up(m);
    let check = docker(
        m,
        &format!(
            "docker rm -f writer >/dev/null; docker run --rm -v data:/data bb sh -c '\
             i=0; while [ $i -le {last} ]; do \
             a=$(dd if=/data/blob bs=65536 skip=$i count=1 2>/dev/null | md5sum); \
             b=$(yes \"block $i\" | head -c 65536 | md5sum); \
             [ \"$a\" = \"$b\" ] || echo \"block $i lost\"; i=$((i+1)); done; echo checked'"
        ),
    );
    assert_eq!(
        check.trim(),
        "checked",
        "blocks 0..={last} were synced:\n{check}"
    );
    last + 1
}

/// Cut power a moment into `docker load` of a large image; after the
/// next boot dockerd answers, lists its images and runs an earlier one.
pub fn docker_load(m: &Machine) {
    let dir = m.dir.path().join("big");
    std::fs::create_dir_all(&dir).expect("a directory for the big image");
    // 48 MiB that does not compress: the load takes a while.
    let noise: String = (0..48 * 1024 * 1024 / 64)
        .map(|i: u64| format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    let root = test_support::busybox_image(&dir, &["sh"], &[("noise", &noise)]);
    let saved = dir.join("big-saved.tar");
    docker(
        m,
        &format!(
            "docker import {} big >/dev/null && docker save big -o {} && docker rmi big >/dev/null",
            root.display(),
            saved.display()
        ),
    );
    let mut load = Command::new("bash");
    load.args([
        "-c",
        &format!(
            "eval \"$(\"$B2D\" env {})\"; exec docker load -i {}",
            m.name,
            saved.display()
        ),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    m.env(&mut load);
    let mut child = load.spawn().expect("bash");
    std::thread::sleep(Duration::from_millis(1500));
    power_cut(m);
    let _ = child.kill();
    let _ = child.wait();
    up(m);
    let images = docker(m, "docker images --format '{{.Repository}}'");
    assert!(images.lines().any(|l| l == "bb"), "{images}");
    assert_eq!(docker(m, "docker run --rm bb echo ran").trim(), "ran");
    // The interrupted load can be done again.
    docker(m, &format!("docker load -i {} >/dev/null", saved.display()));
}
