//! Test helpers written once, for b2d's integration tests (`tests/*.rs`)
//! and its QEMU harness and end-to-end tests (`qemu-tests/`): run a
//! program and assert it succeeded, make an ssh key with the real
//! `ssh-keygen`, hash a file, keep a private machine store, pick a port,
//! measure a run's wall time and peak memory.
//!
//! A missing tool fails the test (never skips it), naming what to install.
//!
//! [`loopdev`] attaches loop devices and runs `b2d-init prepare-disk` on
//! them; [`signatures`] builds the metadata of volume managers and RAID (LVM2,
//! md, bcache, ZFS, Ceph, VMFS) by hand, for images in memory or on disk.
//! [`virtiofs`] is a hostile virtio-fs guest: it sends crafted FUSE requests
//! straight to a share server over vhost-user.

pub mod loopdev;
pub mod signatures;
pub mod virtiofs;

mod measure;

pub use measure::{measured, Measured};
use sha2::{Digest, Sha256};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// How many times a benchmark runs each case: `B2D_BENCH_RUNS` (the
/// sample `make test` runs sets 1), else `default`.
pub fn bench_runs(default: usize) -> usize {
    bench_count("B2D_BENCH_RUNS", default)
}

/// A positive count from the environment variable `name`, else `default`.
pub fn bench_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// The command line of `cmd`, for failure messages.
fn shown(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run `cmd` to the end. A program that cannot be started fails the test
/// with its name and where the test tools come from.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| cannot_run(cmd, e))
}

/// Fail the test for a program that could not be started, naming it and
/// where the test tools come from.
fn cannot_run(cmd: &Command, e: std::io::Error) -> ! {
    panic!(
        "cannot run `{}` ({e}): is it installed? (.ci/deps installs every tool the tests use)",
        shown(cmd)
    )
}

/// Run `cmd` for at most `limit`, in its own process group: a command
/// that hangs has that whole group killed, and the test fails naming it
/// with `context()` (a console tail, say) instead of hanging until the
/// runner kills the test with no word of where it stopped.
pub fn output_within(cmd: &mut Command, limit: Duration, context: impl Fn() -> String) -> Output {
    use std::os::unix::process::CommandExt;
    let child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| cannot_run(cmd, e));
    let pid = child.id();
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match waited.recv_timeout(limit) {
        Ok(out) => out.unwrap_or_else(|e| panic!("`{}`: {e}", shown(cmd))),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            let out = waited.recv_timeout(Duration::from_secs(10));
            let (stdout, stderr) = match &out {
                Ok(Ok(o)) => (
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                ),
                _ => Default::default(),
            };
            panic!(
                "`{}` still ran after {} s and was killed:\nstdout: {stdout}\nstderr: {stderr}\n{}",
                shown(cmd),
                limit.as_secs(),
                context()
            )
        }
    }
}

/// Run `cmd` with `stdin` as its input; see [`output`].
pub fn output_fed(cmd: &mut Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| cannot_run(cmd, e));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin)
        .unwrap_or_else(|e| panic!("`{}`: writing its input: {e}", shown(cmd)));
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("`{}`: {e}", shown(cmd)))
}

/// Fail the test, naming `what`, unless `out` is a success; returns stdout.
pub fn assert_ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "`{what}` failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fail the test, naming `what`, if `out` is a success; returns stderr.
pub fn assert_fails(what: &str, out: &Output) -> String {
    assert!(
        !out.status.success(),
        "`{what}` succeeded:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run `cmd`, which must succeed; returns its stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert_ok(&shown(cmd), &out)
}

/// Run `cmd` on `stdin`, which must succeed; returns its stdout.
pub fn ok_fed(cmd: &mut Command, stdin: &[u8]) -> String {
    let out = output_fed(cmd, stdin);
    assert_ok(&shown(cmd), &out)
}

/// Run `program args`, which must succeed; returns its stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    ok(Command::new(program).args(args))
}

/// Fail the test unless `program` is on PATH, naming the Debian package
/// that provides it.
pub fn need(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .any(|d| d.join(program).is_file());
    assert!(
        found,
        "cannot run `{program}`: install the `{package}` package (apt-get install {package})"
    );
}

/// An ssh key pair made by `ssh-keygen`, without a passphrase.
#[derive(Debug, Clone)]
pub struct Key {
    pub private: PathBuf,
    pub public: PathBuf,
}

impl Key {
    /// The public key file's content (one line, newline included).
    pub fn public_line(&self) -> String {
        std::fs::read_to_string(&self.public)
            .unwrap_or_else(|e| panic!("{}: {e}", self.public.display()))
    }
}

/// An ed25519 key pair `dir/id_ed25519{,.pub}`.
pub fn keygen(dir: &Path) -> Key {
    keygen_as(dir, "id_ed25519", "ed25519")
}

/// A key pair `dir/NAME{,.pub}` of type `kind` (`ed25519`, or `rsa` at
/// 2048 bits as docker-machine made its keys).
pub fn keygen_as(dir: &Path, name: &str, kind: &str) -> Key {
    need("ssh-keygen", "openssh-client");
    let private = dir.join(name);
    let bits = if kind == "rsa" { "2048" } else { "256" };
    ok(Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-b", bits])
        .args(["-N", "", "-C", "b2d-test", "-f"])
        .arg(&private));
    Key {
        public: private.with_extension("pub"),
        private,
    }
}

/// The lowercase hex SHA-256 of a file's bytes.
pub fn sha256(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Where `needle` first occurs in bytes `start..end` of the file or device
/// at `path` (an offset from the start of the file), if it does. Reads in
/// 1 MiB steps; a step of zeros (a hole, most of a sparse image) is only
/// looked at for the bytes it shares with its neighbours.
pub fn find_bytes(path: &Path, start: u64, end: u64, needle: &[u8]) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    assert!(
        !needle.is_empty(),
        "searching {} for nothing",
        path.display()
    );
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.seek(SeekFrom::Start(start))
        .unwrap_or_else(|e| panic!("{}: seek to {start}: {e}", path.display()));
    let step = 1usize << 20;
    let keep = needle.len() - 1;
    // `buf` holds the last `keep` bytes of the previous step, then this one.
    let mut buf: Vec<u8> = Vec::with_capacity(keep + step);
    let mut buf_at = start;
    while buf_at + (buf.len() as u64) < end {
        let have = buf.len();
        let want = step.min((end - buf_at - have as u64) as usize);
        buf.resize(have + want, 0);
        let n = f
            .read(&mut buf[have..])
            .unwrap_or_else(|e| panic!("{}: read at {}: {e}", path.display(), buf_at));
        buf.truncate(have + n);
        if n == 0 {
            break;
        }
        if buf.iter().any(|&b| b != 0) {
            if let Some(i) = buf.windows(needle.len()).position(|w| w == needle) {
                return Some(buf_at + i as u64);
            }
        }
        let drop = buf.len().saturating_sub(keep);
        buf.drain(..drop);
        buf_at += drop as u64;
    }
    None
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound and
/// released; whoever binds it next gets it).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// A port on 127.0.0.1 held busy for as long as the listener lives.
pub fn busy_port() -> (TcpListener, u16) {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0");
    let port = l.local_addr().expect("a bound address").port();
    (l, port)
}

/// The `XDG_RUNTIME_DIR` every `b2d` under test gets: the caller's, else
/// one directory (0700) of this user's shared by all tests, so that b2d's
/// KVM probe (up to 25 s where KVM hangs) runs once per host boot as it
/// does for a user, although each test has a store of its own. b2d itself
/// ignores the directory if it is not this user's alone.
pub fn runtime_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return d.into();
    }
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    runtime_dir_of(uid, gid)
}

/// The shared runtime directory of user `uid` (group `gid`) for tests
/// that run b2d as that user: made 0700 and given to the user if missing.
pub fn runtime_dir_of(uid: u32, gid: u32) -> PathBuf {
    use std::os::unix::fs::DirBuilderExt;
    let d = std::env::temp_dir().join(format!("b2d-test-runtime-{uid}"));
    if std::fs::DirBuilder::new().mode(0o700).create(&d).is_ok() {
        let _ = std::os::unix::fs::chown(&d, Some(uid), Some(gid));
    }
    d
}

/// A private b2d machine store: a temporary directory holding
/// `data/` (XDG_DATA_HOME, so machines live in `data/b2d/machines/`) and
/// `home/` (HOME), removed when dropped.
pub struct MachineStore {
    dir: tempfile::TempDir,
}

impl Default for MachineStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MachineStore {
    pub fn new() -> MachineStore {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(dir.path().join("home")).expect("creating home/");
        MachineStore { dir }
    }

    /// The temporary directory itself.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// What XDG_DATA_HOME is set to.
    pub fn data_home(&self) -> PathBuf {
        self.path().join("data")
    }

    /// The directory machines live in.
    pub fn root(&self) -> PathBuf {
        self.data_home().join("b2d/machines")
    }

    pub fn machine_dir(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }

    /// How many entries the store holds (machines or anything left over).
    pub fn entries(&self) -> usize {
        std::fs::read_dir(self.root())
            .map(|rd| rd.count())
            .unwrap_or(0)
    }

    /// Point `c` at this store and home, with nothing of the caller's b2d
    /// or docker environment (B2D_ISO, DOCKER_HOST…) and no stdin. The
    /// runtime directory is shared (see [`runtime_dir`]).
    pub fn env<'c>(&self, c: &'c mut Command) -> &'c mut Command {
        c.env("XDG_DATA_HOME", self.data_home())
            .env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", runtime_dir())
            .env_remove("B2D_ISO")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("DOCKER_TLS_VERIFY")
            .stdin(Stdio::null())
    }

    /// `program` run against this store (see [`MachineStore::env`]).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        self.env(&mut c);
        c
    }
}

/// A one-binary image root for `docker import`: the host's static
/// busybox with `applets` linked to it, plus `files` (path, content),
/// packed as `dir/image.tar`.
pub fn busybox_image(dir: &Path, applets: &[&str], files: &[(&str, &str)]) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).expect("creating the image root");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("/bin/busybox (busybox-static)");
    for applet in applets {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
            .expect("linking an applet");
    }
    for (path, content) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("a file in a directory"))
            .expect("creating a directory");
        std::fs::write(p, content).expect("writing an image file");
    }
    let tar = dir.join("image.tar");
    run(
        "tar",
        &[
            "-C",
            root.to_str().expect("UTF-8 path"),
            "-cf",
            tar.to_str().expect("UTF-8 path"),
            ".",
        ],
    );
    tar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_returns_stdout_and_failures_name_the_command() {
        assert_eq!(run("sh", &["-c", "echo hi"]), "hi\n");
        assert_eq!(ok_fed(&mut Command::new("cat"), b"fed"), "fed");
        let out = output(Command::new("sh").args(["-c", "echo no >&2; exit 3"]));
        assert_eq!(assert_fails("sh", &out), "no\n");
        let e = std::panic::catch_unwind(|| run("sh", &["-c", "exit 3"])).unwrap_err();
        let msg = e.downcast_ref::<String>().unwrap();
        assert!(msg.starts_with("`sh -c exit 3` failed"), "{msg}");
        let e = std::panic::catch_unwind(|| run("/nonexistent/tool", &[])).unwrap_err();
        let msg = e.downcast_ref::<String>().unwrap();
        assert!(msg.contains("cannot run `/nonexistent/tool`"), "{msg}");
    }

    #[test]
    fn keys_hashes_and_ports() {
        let t = tempfile::tempdir().unwrap();
        let k = keygen(t.path());
        assert!(k.private.is_file());
        assert!(k.public_line().starts_with("ssh-ed25519 AAAA"));
        let rsa = keygen_as(t.path(), "id_rsa", "rsa");
        assert!(rsa.public_line().starts_with("ssh-rsa AAAA"));
        let f = t.path().join("f");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(
            sha256(&f),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let (held, busy) = busy_port();
        assert!(TcpListener::bind(("127.0.0.1", busy)).is_err());
        drop(held);
        assert!(TcpListener::bind(("127.0.0.1", free_port())).is_ok());
    }

    #[test]
    fn find_bytes_sees_across_steps_and_only_inside_its_range() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("img");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(3 << 20).unwrap();
        drop(f);
        let at = (1u64 << 20) - 3; // straddles the first step's end
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(b"needle").unwrap();
        }
        assert_eq!(find_bytes(&p, 0, 3 << 20, b"needle"), Some(at));
        assert_eq!(find_bytes(&p, 5, 3 << 20, b"needle"), Some(at));
        assert_eq!(find_bytes(&p, at + 1, 3 << 20, b"needle"), None);
        assert_eq!(find_bytes(&p, 0, at + 5, b"needle"), None);
        assert_eq!(find_bytes(&p, 0, 3 << 20, b"needles"), None);
    }

    #[test]
    fn a_machine_store_is_private() {
        let s = MachineStore::new();
        assert!(s.home().is_dir());
        assert_eq!(s.entries(), 0);
        let out = ok(s.command("sh").args([
            "-c",
            "printf '%s|%s|%s' \"$XDG_DATA_HOME\" \"$HOME\" \"${B2D_ISO-unset}\"",
        ]));
        assert_eq!(
            out,
            format!("{}|{}|unset", s.data_home().display(), s.home().display())
        );
        assert_eq!(s.machine_dir("dev"), s.path().join("data/b2d/machines/dev"));
    }
}
