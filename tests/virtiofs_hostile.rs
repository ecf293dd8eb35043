//! The share server against a hostile guest kernel: crafted FUSE requests
//! sent straight to a real virtiofsd over its vhost-user socket (no
//! well-behaved guest kernel between), with b2d's own virtiofsd arguments
//! and only the sandbox chosen here.
//!
//! virtiofsd runs unprivileged, as under b2d: as user 65534 when the tests
//! run as root, else as the user running them.

use b2d::host::shares::Mount;
use b2d::host::virtiofs;
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
    let mount = Mount {
        path: share.to_path_buf(),
        readonly: false,
    };
    let mut a = virtiofs::daemon_args(&mount, sock, who.uid, who.gid);
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
