//! virtiofs shares: one virtiofsd (the Rust one, from the virtiofsd
//! crate or a distribution's package) per shared folder, run as the user
//! who runs `b2d up`, serving QEMU's `vhost-user-fs-pci` device over a unix
//! socket in the machine's directory. virtiofsd ends by itself when QEMU
//! closes that socket, so nothing has to stop it.
//!
//! Each runs [confined](super::confine): it serves its share's view, with
//! the hidden paths masked, from a namespace of b2d's making, and
//! sandboxes itself in it (`--sandbox namespace`: its own user, mount,
//! pid and network namespaces, the view as its root). Unsandboxed
//! (`--sandbox none`), virtiofsd 1.14 takes the names the guest sends in
//! `mkdir`, `unlink`, `rename`, `symlink`, `link` and `mknod` as they
//! come, so a guest kernel sending `../x` acted outside the share.
//!
//! Ownership crosses as with 9p: whatever uid a container writes as, the
//! file is the user's on the host; in the guest every host file shows as
//! the docker user (1000) and group staff (50), so root and uid 1000 read
//! them. (An unprivileged virtiofsd cannot switch to other ids: without
//! this mapping the guest's docker user could not create files at all.)

use super::{confine, Plan};
use crate::errors::PathError;
use crate::host::store::Machine;
use crate::util::qemu_opt_path as opt_path;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The uid and gid host files show as in the guest (docker, staff).
const GUEST_UID: u32 = 1000;
const GUEST_GID: u32 = 50;

/// Where virtiofsd is looked for: `$B2D_VIRTIOFSD`, then PATH, then the
/// distributions' places.
const PLACES: &[&str] = &["/usr/libexec/virtiofsd", "/usr/lib/virtiofsd"];

/// A virtiofsd that can serve shares as an ordinary user: the Rust one
/// (QEMU's old C virtiofsd needs root and has no id translation).
pub fn find() -> Option<PathBuf> {
    let env = std::env::var_os("B2D_VIRTIOFSD").filter(|v| !v.is_empty());
    let named = env.map(PathBuf::from);
    let candidates = named
        .into_iter()
        .chain(crate::util::which(Path::new("virtiofsd")))
        .chain(PLACES.iter().map(PathBuf::from));
    candidates.into_iter().find(|p| usable(p))
}

/// Whether `bin` is a virtiofsd with the options b2d passes.
pub fn usable(bin: &Path) -> bool {
    let Ok(out) = crate::sys::run::command(bin)
        .arg("--help")
        .stdin(std::process::Stdio::null())
        .output()
    else {
        return false;
    };
    let help = String::from_utf8_lossy(&out.stdout);
    ["--translate-uid", "--socket-path", "--sandbox"]
        .iter()
        .all(|o| help.contains(o))
}

/// virtiofsd's arguments for one share served from `dir` (its view), as
/// the host user `uid`:`gid`.
pub fn daemon_args(dir: &Path, readonly: bool, sock: &Path, uid: u32, gid: u32) -> Vec<String> {
    let mut a = vec![
        "--socket-path".into(),
        sock.display().to_string(),
        "--shared-dir".into(),
        dir.display().to_string(),
        // Unprivileged: a user namespace of its own, the share its root.
        "--sandbox".into(),
        "namespace".into(),
        // auto: the guest sees host edits (measured coherent; `always` is not).
        "--cache".into(),
        "auto".into(),
        "--translate-uid".into(),
        format!("squash-guest:0:{uid}:4294967295"),
        "--translate-gid".into(),
        format!("squash-guest:0:{gid}:4294967295"),
        "--translate-uid".into(),
        format!("squash-host:0:{GUEST_UID}:4294967295"),
        "--translate-gid".into(),
        format!("squash-host:0:{GUEST_GID}:4294967295"),
    ];
    if readonly {
        a.push("--readonly".into());
    }
    a
}

#[derive(Debug, thiserror::Error)]
pub enum VirtiofsError {
    #[error("{bin}: cannot start virtiofsd for {dir}: {source}")]
    Spawn {
        bin: PathBuf,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("virtiofsd for {dir} did not start (see {log}): {why}")]
    Failed {
        dir: PathBuf,
        log: PathBuf,
        #[source]
        why: NotServing,
    },
}

/// Why a virtiofsd that was started serves no socket.
#[derive(Debug, thiserror::Error)]
pub enum NotServing {
    #[error("it exited ({0})")]
    Exited(std::process::ExitStatus),
    #[error("no socket {} after 10 s", .0.display())]
    NoSocket(PathBuf),
}

/// Start one virtiofsd per planned share, detached (its own process
/// group, output appended to `virtiofsd.log`), confined on the share's
/// view, and wait until each serves its socket. On an error the ones
/// already started are killed.
pub fn start_all(
    m: &Machine,
    bin: &Path,
    plan: &Plan,
) -> Result<Vec<std::process::Child>, VirtiofsError> {
    let views = super::views(m, plan).map_err(|source| VirtiofsError::Spawn {
        bin: bin.into(),
        dir: m.dir.clone(),
        source,
    })?;
    let mut started: Vec<std::process::Child> = Vec::new();
    for (i, view) in views.iter().enumerate() {
        let readonly = plan.shares[i].mount.readonly;
        match start_one(m, bin, view, readonly, &m.virtiofs_socket(i)) {
            Ok(c) => started.push(c),
            Err(e) => {
                for c in &mut started {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(e);
            }
        }
    }
    Ok(started)
}

/// Wait (up to 5 s) until no daemon holds the lock on `pid_file`: the
/// daemon of a QEMU just stopped exits on its own, and a new one cannot
/// start while it holds the file.
fn wait_released(pid_file: &Path) {
    use nix::fcntl::{Flock, FlockArg};
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(5) {
        let Ok(f) = std::fs::File::open(pid_file) else {
            return;
        };
        if Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn start_one(
    m: &Machine,
    bin: &Path,
    view: &confine::View,
    readonly: bool,
    sock: &Path,
) -> Result<std::process::Child, VirtiofsError> {
    use std::os::unix::process::CommandExt;
    let spawn_error = |source| VirtiofsError::Spawn {
        bin: bin.into(),
        dir: view.source.clone(),
        source,
    };
    wait_released(&sock.with_extension("sock.pid"));
    let _ = std::fs::remove_file(sock);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(m.virtiofsd_log())
        .map_err(|e| spawn_error(PathError::new("open", m.virtiofsd_log(), e).into()))?;
    let ids = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let mut cmd = crate::sys::run::command(bin);
    serve(&mut cmd, view, readonly, sock, &m.hidden_dir(), ids).map_err(spawn_error)?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(spawn_error)?)
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().map_err(spawn_error)?;
    if let Err(why) = wait_for_socket(&mut child, sock) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(VirtiofsError::Failed {
            dir: view.source.clone(),
            log: m.virtiofsd_log(),
            why,
        });
    }
    Ok(child)
}

/// Make `cmd` (a virtiofsd) serve `view` on `sock` as b2d starts it,
/// confined, for the user `uid`:`gid` (the masks' tmpfs in `hidden`).
/// The caller sets its output and spawns it.
pub fn serve(
    cmd: &mut std::process::Command,
    view: &confine::View,
    readonly: bool,
    sock: &Path,
    hidden: &Path,
    (uid, gid): (u32, u32),
) -> std::io::Result<()> {
    cmd.args(daemon_args(&view.at, readonly, sock, uid, gid));
    confine::prepare_as(Some(std::slice::from_ref(view)), hidden, (uid, gid))?.apply(cmd);
    Ok(())
}

fn wait_for_socket(child: &mut std::process::Child, sock: &Path) -> Result<(), NotServing> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if sock.exists() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(NotServing::Exited(status));
        }
        if Instant::now() > deadline {
            return Err(NotServing::NoSocket(sock.to_path_buf()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// QEMU arguments: one vhost-user-fs device per mount, tag `tags[i]`
/// (virtiofsd maps the guest RAM, a shared memfd: [`crate::host::vm::ram`]).
/// The devices' PCI slots are fixed (from [`FIRST_SLOT`]) so that a
/// machine saved with them unplugged has every other device where a
/// resumed QEMU without them puts it. `devices: false` leaves the
/// devices out (a resume plugs them in after loading).
pub fn qemu_args(m: &Machine, tags: &[String], devices: bool) -> Vec<String> {
    let mut a = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        a.push("-chardev".into());
        a.push(format!(
            "socket,id=vfs{i},path={}",
            opt_path(&m.virtiofs_socket(i))
        ));
        if devices {
            a.push("-device".into());
            a.push(device(i, tag).join(","));
        }
    }
    a
}

/// The first PCI slot of the virtiofs devices (QEMU places the others
/// from slot 2 up, and a machine has far fewer).
pub const FIRST_SLOT: usize = 0x10;

/// The id of share `i`'s device, for `device_del`.
pub fn device_id(i: usize) -> String {
    format!("vfsdev{i}")
}

/// Share `i`'s device as `key=value` properties (driver first).
pub fn device(i: usize, tag: &str) -> Vec<String> {
    vec![
        "vhost-user-fs-pci".into(),
        format!("chardev=vfs{i}"),
        format!("tag={tag}"),
        format!("id={}", device_id(i)),
        format!("addr={:#x}", FIRST_SLOT + i),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_runs_sandboxed_unprivileged_and_maps_ids_both_ways() {
        let view = Path::new("/m/dev/share0");
        let a = daemon_args(view, true, Path::new("/d/vfs0.sock"), 1234, 999).join(" ");
        assert!(
            a.starts_with(
                "--socket-path /d/vfs0.sock --shared-dir /m/dev/share0 --sandbox namespace --cache auto"
            ),
            "{a}"
        );
        assert!(
            a.contains("--translate-uid squash-guest:0:1234:4294967295"),
            "{a}"
        );
        assert!(
            a.contains("--translate-gid squash-guest:0:999:4294967295"),
            "{a}"
        );
        assert!(
            a.contains("--translate-uid squash-host:0:1000:4294967295"),
            "{a}"
        );
        assert!(
            a.contains("--translate-gid squash-host:0:50:4294967295"),
            "{a}"
        );
        assert!(a.ends_with("--readonly"), "{a}");
    }

    #[test]
    fn qemu_gets_one_device_a_share() {
        let t = tempfile::tempdir().unwrap();
        let m = crate::host::store::sample(t.path().join("a,b"));
        assert!(qemu_args(&m, &[], true).is_empty());
        let tags = ["b2d0".to_string(), "b2d1".to_string()];
        let a = qemu_args(&m, &tags, true);
        let dir = t.path().join("a,,b").display().to_string();
        assert_eq!(a[1], format!("socket,id=vfs0,path={dir}/vfs0.sock"));
        assert_eq!(
            a[3],
            "vhost-user-fs-pci,chardev=vfs0,tag=b2d0,id=vfsdev0,addr=0x10"
        );
        assert_eq!(
            a[7],
            "vhost-user-fs-pci,chardev=vfs1,tag=b2d1,id=vfsdev1,addr=0x11"
        );
        // For a resume: the daemons' sockets, no devices.
        let bare = qemu_args(&m, &tags, false);
        assert_eq!(bare.len(), 4, "{bare:?}");
        assert!(!bare.iter().any(|a| a.starts_with("vhost-user-fs-pci")));
    }

    fn fake_daemon(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("fake-virtiofsd");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn daemons_start_before_qemu_and_a_failed_one_is_named() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let m = crate::host::store::sample(root.join("m"));
        std::fs::create_dir_all(&m.dir).unwrap();
        let mut plan = Plan::none();
        for d in ["a", "b"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
            std::fs::write(root.join(d).join("f"), d).unwrap();
            plan.shares.push(crate::host::shares::Planned {
                mount: crate::host::shares::Mount {
                    path: root.join(d),
                    readonly: false,
                },
                masks: Vec::new(),
                exposes: None,
            });
        }
        // $2 is --socket-path's value, $4 --shared-dir's: the fake
        // "serves" by creating the socket, and shows its share's file.
        let ok = fake_daemon(
            &root,
            r#": > "$2"; echo serving "$(cat "$4/f")"; exec sleep 30"#,
        );
        let mut kids = start_all(&m, &ok, &plan).unwrap();
        assert_eq!(kids.len(), 2);
        assert!(m.virtiofs_socket(0).exists() && m.virtiofs_socket(1).exists());
        for k in &mut kids {
            k.kill().unwrap();
            k.wait().unwrap();
        }
        let log = std::fs::read_to_string(m.virtiofsd_log()).unwrap();
        assert!(
            log.contains("serving a") && log.contains("serving b"),
            "{log}"
        );

        let bad = fake_daemon(&root, "echo no such option >&2; exit 2");
        let e = start_all(&m, &bad, &plan).unwrap_err().to_string();
        let a = root.join("a").display().to_string();
        assert!(
            e.starts_with(&format!("virtiofsd for {a} did not start")),
            "{e}"
        );
        assert!(e.contains("it exited"), "{e}");
        assert!(std::fs::read_to_string(m.virtiofsd_log())
            .unwrap()
            .contains("no such option"));
    }

    #[test]
    fn a_program_without_the_options_is_not_usable() {
        assert!(!usable(Path::new("/bin/true")), "prints no help");
        assert!(!usable(Path::new("/nonexistent/virtiofsd")));
    }
}
