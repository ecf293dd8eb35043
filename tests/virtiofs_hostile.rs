//! The share server against a hostile guest kernel: crafted FUSE requests
//! sent straight to a real virtiofsd over its vhost-user socket (no
//! well-behaved guest kernel between). First with b2d's virtiofsd
//! arguments and only the sandbox chosen here (what `--sandbox none`
//! allowed, what virtiofsd's own sandbox holds), then started exactly as
//! `b2d up` starts it: b2d's launcher, namespace, masks, filter and
//! sandbox.
//!
//! virtiofsd runs unprivileged, as under b2d: as user 65534 when the tests
//! run as root, else as the user running them.

use b2d::host::shares::{confine::View, virtiofs};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use test_support::virtiofs::escape::{self, Attempt, Change, Scene};
use test_support::virtiofs::{Daemon, Errno, FuseClient, ROOT};

/// Who the server runs as, and whether it takes `setpriv` to get there.
struct ServerUser {
    uid: u32,
    gid: u32,
    switch: bool,
}

fn server_user() -> ServerUser {
    // /proc/self belongs to the effective uid and gid of this process.
    let me = std::fs::metadata("/proc/self").unwrap();
    if me.uid() == 0 {
        ServerUser {
            uid: 65534,
            gid: 65534,
            switch: true,
        }
    } else {
        ServerUser {
            uid: me.uid(),
            gid: me.gid(),
            switch: false,
        }
    }
}

/// A private directory for one test, that other users may enter.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

/// Give `path` and everything under it to the server's user.
fn give(path: &Path, who: &ServerUser) {
    if who.switch {
        test_support::run(
            "chown",
            &[
                "-R",
                "-h",
                &format!("{}:{}", who.uid, who.gid),
                path.to_str().unwrap(),
            ],
        );
    }
}

/// b2d's virtiofsd arguments for `share` on `sock`, with `--sandbox mode`.
fn args(share: &Path, sock: &Path, who: &ServerUser, mode: &str) -> Vec<String> {
    let mut a = virtiofs::daemon_args(share, false, sock, who.uid, who.gid);
    let at = a
        .iter()
        .position(|x| x == "--sandbox")
        .unwrap_or_else(|| panic!("b2d passes virtiofsd no --sandbox: {a:?}"));
    a[at + 1] = mode.to_string();
    a
}

/// Start virtiofsd as the server's user with `args`, stderr piped.
fn spawn(args: &[String], who: &ServerUser) -> Child {
    let bin = virtiofs::find()
        .expect("no usable virtiofsd (the Rust one, with --translate-uid): .ci/deps installs it");
    let mut c = if who.switch {
        test_support::need("setpriv", "util-linux");
        let mut c = Command::new("setpriv");
        c.args([
            format!("--reuid={}", who.uid),
            format!("--regid={}", who.gid),
            "--clear-groups".into(),
            "--".into(),
        ])
        .arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c.spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()))
}

/// virtiofsd serving `share` with `--sandbox mode`, and a client on it.
fn serve(dir: &Path, share: &Path, who: &ServerUser, mode: &str) -> (Daemon, FuseClient) {
    let sock = dir.join("vfs.sock");
    let mut d = Daemon::new(spawn(&args(share, &sock, who, mode), who), &sock);
    let c = d.connect();
    (d, c)
}

#[test]
fn client_reads_and_writes_a_share_through_virtiofsd() {
    let who = server_user();
    let dir = scratch();
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::write(share.join("host.txt"), "from the host\n").unwrap();
    give(dir.path(), &who);
    let (_d, mut f) = serve(dir.path(), &share, &who, "none");

    assert_eq!(f.lookup(ROOT, b"missing"), Err(Errno(libc::ENOENT)));
    let host = f.lookup(ROOT, b"host.txt").unwrap();
    assert_eq!(host.attr.size, 14);
    let fh = f.open(host.nodeid, libc::O_RDONLY).unwrap();
    assert_eq!(f.read(host.nodeid, fh, 0, 100).unwrap(), b"from the host\n");
    assert_eq!(f.read(host.nodeid, fh, 5, 3).unwrap(), b"the");
    f.release(host.nodeid, fh).unwrap();

    let d = f.mkdir(ROOT, b"d", 0o755).unwrap();
    assert!(share.join("d").is_dir());
    assert_eq!(f.mkdir(ROOT, b"d", 0o755), Err(Errno(libc::EEXIST)));
    let (file, fh) = f.create(d.nodeid, b"f", 0o644, libc::O_RDWR).unwrap();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(f.write(file.nodeid, fh, 0, b"hello").unwrap(), 5);
    assert_eq!(f.write(file.nodeid, fh, 5, &big).unwrap(), big.len() as u32);
    let mut back = f.read(file.nodeid, fh, 0, 5).unwrap();
    back.extend(f.read(file.nodeid, fh, 5, 256 << 10).unwrap());
    assert_eq!(&back[..5], b"hello");
    assert!(back[5..] == big[..], "200 kB read back differ");
    f.release(file.nodeid, fh).unwrap();
    let on_host = std::fs::read(share.join("d/f")).unwrap();
    assert!(on_host.len() == 5 + big.len() && on_host.starts_with(b"hello"));
    let m = std::fs::metadata(share.join("d/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (who.uid, who.gid), "owner of d/f");

    let again = f.lookup(d.nodeid, b"f").unwrap();
    assert_eq!((again.nodeid, again.attr.size), (file.nodeid, 5 + 200_000));
    assert_eq!(f.getattr(file.nodeid).unwrap().mode, libc::S_IFREG | 0o644);
    assert_eq!(
        f.setattr_mode(file.nodeid, 0o600).unwrap().mode & 0o7777,
        0o600
    );
    assert_eq!(m.mode() & 0o7777, 0o644, "mode before chmod");
    let m = std::fs::metadata(share.join("d/f")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600, "mode on the host after SETATTR");

    let l = f.symlink(ROOT, b"l", b"d/f").unwrap();
    assert_eq!(f.readlink(l.nodeid).unwrap(), b"d/f");
    assert_eq!(
        std::fs::read_link(share.join("l")).unwrap(),
        Path::new("d/f")
    );
    let f2 = f.link(file.nodeid, ROOT, b"f2").unwrap();
    assert_eq!(f2.attr.nlink, 2);
    assert_eq!(std::fs::metadata(share.join("f2")).unwrap().nlink(), 2);
    f.rename(ROOT, b"f2", d.nodeid, b"f3").unwrap();
    assert!(share.join("d/f3").is_file() && !share.join("f2").exists());
    assert_eq!(
        f.rename2(d.nodeid, b"f3", d.nodeid, b"f", libc::RENAME_NOREPLACE),
        Err(Errno(libc::EEXIST))
    );
    let fifo = f.mknod(d.nodeid, b"p", libc::S_IFIFO | 0o644, 0).unwrap();
    assert_eq!(fifo.attr.mode & libc::S_IFMT, libc::S_IFIFO);
    assert!(std::fs::metadata(share.join("d/p"))
        .unwrap()
        .file_type()
        .is_fifo());

    let mut names = f.readdir(d.nodeid).unwrap();
    names.sort();
    assert_eq!(names, [&b"."[..], b"..", b"f", b"f3", b"p"]);
    assert_eq!(f.rmdir(ROOT, b"d"), Err(Errno(libc::ENOTEMPTY)));
    for n in [&b"f"[..], b"f3", b"p"] {
        f.unlink(d.nodeid, n).unwrap();
    }
    f.unlink(ROOT, b"l").unwrap();
    f.rmdir(ROOT, b"d").unwrap();
    f.forget(d.nodeid, 1);
    assert!(!share.join("d").exists());
    let mut names = f.readdir(ROOT).unwrap();
    names.sort();
    assert_eq!(names, [&b"."[..], b"..", b"host.txt"]);
}

/// A scene under a scratch directory, given to the server's user, served
/// with `--sandbox mode`, every crafted request sent; with what changed
/// outside the share over the whole run.
fn attempt(mode: &str) -> (Scene, Vec<Attempt>, Vec<Change>, tempfile::TempDir) {
    let who = server_user();
    let dir = scratch();
    let scene = Scene::create(&dir.path().join("top"));
    give(dir.path(), &who);
    let first = scene.outside();
    let (_d, mut f) = serve(dir.path(), &scene.share, &who, mode);
    let attempts = escape::attempt_all(&mut f, &scene);
    let all = escape::changes(&first, &scene.outside());
    (scene, attempts, all, dir)
}

/// The reply to `request`.
fn reply<'a>(attempts: &'a [Attempt], request: &str) -> &'a str {
    let a = attempts.iter().find(|a| a.request == request);
    &a.unwrap_or_else(|| panic!("no attempt {request}")).reply
}

/// The requests virtiofsd resolves under the share's root whatever its
/// sandbox (openat2 with RESOLVE_IN_ROOT).
fn resolved_in_root(a: &Attempt) -> bool {
    a.request.starts_with("LOOKUP") || a.request.starts_with("CREATE")
}

/// What a share served the way b2d does today (`--sandbox none`) lets a
/// hostile guest do: MKDIR, MKNOD, SYMLINK, LINK, UNLINK, RMDIR and RENAME
/// act on the name as sent (`..`, a path through a symlink, an absolute
/// path) and change things outside the share, and a file moved in from
/// outside can then be read. LOOKUP and CREATE stay in the share.
#[test]
fn without_a_sandbox_crafted_names_act_outside_the_share() {
    let (scene, attempts, _, _dir) = attempt("none");
    let report = escape::report(&attempts);
    for a in &attempts {
        if resolved_in_root(a) {
            assert!(!a.escaped(), "{} escaped:\n{report}", a.request);
        } else {
            assert!(
                a.hit(),
                "{} did not act on {} alone:\n{report}",
                a.request,
                a.aim.display()
            );
        }
    }
    assert_eq!(
        reply(&attempts, r#"LOOKUP ROOT "..""#),
        "the root",
        "\n{report}"
    );
    assert!(scene.share.join("created").is_file(), "\n{report}");
    let stolen = reply(
        &attempts,
        r#"RENAME ROOT "../secret" to ROOT "stolen", then read it"#,
    );
    assert_eq!(stolen, r#"ok; read "secret\n""#, "\n{report}");
}

/// A share served with virtiofsd's namespace sandbox (its own user and
/// mount namespace, pivoted into the shared folder): no crafted name
/// changes anything outside the share, and `..` from the root is the root.
#[test]
fn in_a_namespace_sandbox_crafted_names_stay_in_the_share() {
    let (scene, attempts, all, _dir) = attempt("namespace");
    let report = escape::report(&attempts);
    let escaped: Vec<&str> = attempts
        .iter()
        .filter(|a| a.escaped())
        .map(|a| a.request.as_str())
        .collect();
    assert_eq!(escaped, Vec::<&str>::new(), "\n{report}");
    assert_eq!(all, [], "\n{report}");
    assert_eq!(
        reply(&attempts, r#"LOOKUP ROOT "..""#),
        "the root",
        "\n{report}"
    );
    // The requests were served, inside: `..` of the share's root is the
    // root, so "../escaped" is made in the share.
    for inside in ["escaped", "slashed", "via_symlink", "fifo", "link", "moved"] {
        let p = scene.share.join(inside);
        assert!(
            p.symlink_metadata().is_ok(),
            "{} missing\n{report}",
            p.display()
        );
    }
    assert!(!scene.share.join("stolen").exists(), "\n{report}");
}

/// virtiofsd started by b2d's own launcher (`virtiofs::serve`: the view
/// of `share` at `at` in a namespace of its own, `masks` masked, the
/// setuid filter, its namespace sandbox), as the server's user.
fn serve_as_b2d(dir: &Path, share: &Path, at: &Path, masks: &[&str], who: &ServerUser) -> Daemon {
    use std::os::unix::process::CommandExt;
    let bin = virtiofs::find().expect("no usable virtiofsd: .ci/deps installs it");
    let (sock, hidden) = (dir.join("vfs.sock"), dir.join("hidden"));
    std::fs::create_dir_all(&hidden).unwrap();
    give(&hidden, who);
    let view = View {
        source: share.to_path_buf(),
        at: at.to_path_buf(),
        masks: masks.iter().map(Into::into).collect(),
    };
    let mut c = Command::new(&bin);
    if who.switch {
        let (uid, gid) = (who.uid, who.gid);
        // SAFETY: setgroups/setresgid/setresuid/prctl only, before b2d's
        // own confinement runs: the launch of an ordinary user.
        unsafe {
            c.pre_exec(move || {
                // A change of uid makes the process undumpable, its
                // /proc/self root's: dumpable again, as a process
                // started by the user is.
                let ok = libc::setgroups(0, std::ptr::null()) == 0
                    && libc::setresgid(gid, gid, gid) == 0
                    && libc::setresuid(uid, uid, uid) == 0
                    && libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) == 0;
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            })
        };
    }
    virtiofs::serve(&mut c, &view, false, &sock, &hidden, (who.uid, who.gid)).unwrap();
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    Daemon::new(child, &sock)
}

/// Started as `b2d up` starts it, with `.ssh` of the share masked: no
/// crafted name changes anything outside the share, and the masked key
/// can be neither read, listed, moved nor replaced.
#[test]
fn started_by_b2d_no_crafted_name_leaves_the_share_or_reaches_a_masked_folder() {
    let who = server_user();
    let dir = scratch();
    let scene = Scene::create(&dir.path().join("top"));
    let ssh = scene.share.join(".ssh");
    std::fs::create_dir(&ssh).unwrap();
    std::fs::write(ssh.join("id_ed25519"), "the user's key\n").unwrap();
    // The view's folder sits beside the share: an escape from the view
    // lands outside the share as well.
    let at = scene.outer.join("view");
    std::fs::create_dir(&at).unwrap();
    give(dir.path(), &who);
    let first = scene.outside();
    let mut d = serve_as_b2d(dir.path(), &scene.share, &at, &[".ssh"], &who);
    let mut f = d.connect();
    let attempts = escape::attempt_all(&mut f, &scene);
    let report = escape::report(&attempts);
    let escaped: Vec<&str> = attempts
        .iter()
        .filter(|a| a.escaped())
        .map(|a| a.request.as_str())
        .collect();
    assert_eq!(escaped, Vec::<&str>::new(), "\n{report}");
    assert_eq!(escape::changes(&first, &scene.outside()), [], "\n{report}");
    assert_eq!(
        reply(&attempts, r#"LOOKUP ROOT "..""#),
        "the root",
        "\n{report}"
    );

    // The masked folder: empty, read-only, not movable.
    let masked = f.lookup(ROOT, b".ssh").unwrap();
    let mut names = f.readdir(masked.nodeid).unwrap();
    names.sort();
    assert_eq!(names, [&b"."[..], b".."]);
    assert_eq!(
        f.lookup(masked.nodeid, b"id_ed25519"),
        Err(Errno(libc::ENOENT))
    );
    assert_eq!(f.lookup(ROOT, b".ssh/id_ed25519"), Err(Errno(libc::ENOENT)));
    assert_eq!(
        f.mkdir(masked.nodeid, b"planted", 0o700),
        Err(Errno(libc::EROFS))
    );
    assert!(f.unlink(ROOT, b".ssh/id_ed25519").is_err());
    assert_eq!(
        f.rename(ROOT, b".ssh", ROOT, b"taken"),
        Err(Errno(libc::EBUSY))
    );
    assert_eq!(f.rmdir(ROOT, b".ssh"), Err(Errno(libc::EBUSY)));
    assert!(f.symlink(masked.nodeid, b"l", b"/").is_err());
    // The guest cannot make a share file setuid or setgid.
    let x = f.lookup(ROOT, b"x").unwrap();
    assert_eq!(f.setattr_mode(x.nodeid, 0o4755), Err(Errno(libc::EPERM)));
    assert_eq!(f.setattr_mode(x.nodeid, 0o2755), Err(Errno(libc::EPERM)));
    assert!(f.create(ROOT, b"suid", 0o4755, libc::O_RDWR).is_err());
    assert!(!scene.share.join("suid").exists());
    assert_eq!(
        f.setattr_mode(x.nodeid, 0o755).unwrap().mode & 0o7777,
        0o755
    );
    // On the host: the key as it was, nothing planted, the share served.
    assert_eq!(
        std::fs::read_to_string(ssh.join("id_ed25519")).unwrap(),
        "the user's key\n"
    );
    assert_eq!(std::fs::read_dir(&ssh).unwrap().count(), 1);
    assert!(
        scene.share.join("escaped").is_dir(),
        "served inside\n{report}"
    );
    assert_eq!(
        std::fs::metadata(scene.share.join("x")).unwrap().mode() & 0o7777,
        0o755
    );
    // Nothing of the namespace shows outside: the view's folder is empty.
    assert_eq!(std::fs::read_dir(&at).unwrap().count(), 0);
    drop(f);
    let log = d.log();
    assert!(!log.contains("confining the share server"), "{log}");
}
