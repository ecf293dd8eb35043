//! A machine driven by an ordinary user, as b2d is meant to be used: the
//! `b2d` binary and the docker CLI run as a user made for the tests when
//! they run as root (CI), else as the user running them, with a HOME of
//! the test's own and none of the caller's docker settings. The machine
//! is removed when the test ends, pass or fail.

use crate::fixture::b2d_bin;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The user the end-to-end tests run b2d as, when they run as root.
const USER: &str = "b2d-e2e";

/// Who runs b2d.
pub struct Who {
    pub uid: u32,
    pub gid: u32,
}

fn id(flag: &str, user: &str) -> u32 {
    let out = Command::new("id").args([flag, user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The ordinary user: made when the tests run as root.
pub fn ordinary_user() -> Who {
    // /proc/self belongs to the effective uid and gid of this process.
    let me = std::fs::metadata("/proc/self").unwrap();
    if me.uid() != 0 {
        return Who {
            uid: me.uid(),
            gid: me.gid(),
        };
    }
    let exists = Command::new("id")
        .arg(USER)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        test_support::run(
            "useradd",
            &["--system", "--no-create-home", "--shell", "/bin/sh", USER],
        );
    }
    Who {
        uid: id("-u", USER),
        gid: id("-g", USER),
    }
}

/// Where the machine store goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// `XDG_DATA_HOME` beside the home (`DIR/data`).
    Beside,
    /// No `XDG_DATA_HOME`: `~/.local/share/b2d`, inside the home, as
    /// most users have it.
    InHome,
}

/// A test directory (the user's home and more) and machine `name`.
pub struct UserEnv {
    pub who: Who,
    pub dir: tempfile::TempDir,
    pub name: &'static str,
    store: Store,
}

impl UserEnv {
    /// Folders `dirs` and files `files` (relative to the test directory)
    /// made and given to the user; `home/` is the user's home.
    pub fn new(name: &'static str, store: Store, dirs: &[&str], files: &[(&str, &str)]) -> UserEnv {
        let who = ordinary_user();
        let dir = tempfile::tempdir().unwrap();
        for d in dirs.iter().chain(&["home"]) {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        for (f, text) in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        test_support::run(
            "chown",
            &[
                "-R",
                &format!("{}:{}", who.uid, who.gid),
                dir.path().to_str().unwrap(),
            ],
        );
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        UserEnv {
            who,
            dir,
            name,
            store,
        }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `$XDG_DATA_HOME/b2d` (or its default in the home).
    pub fn b2d_data(&self) -> PathBuf {
        match self.store {
            Store::Beside => self.dir.path().join("data/b2d"),
            Store::InHome => self.home().join(".local/share/b2d"),
        }
    }

    pub fn machine_dir(&self) -> PathBuf {
        self.b2d_data().join("machines").join(self.name)
    }

    pub fn context(&self) -> String {
        format!("b2d-{}", self.name)
    }

    /// `program args` as the user, with this test's HOME and machine
    /// store and none of the caller's docker settings.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={}", self.who.uid),
            &format!("--regid={}", self.who.gid),
            "--clear-groups",
            "--",
            program,
        ])
        .args(args)
        .env("HOME", self.home())
        .env_remove("XDG_DATA_HOME")
        .env(
            "XDG_RUNTIME_DIR",
            test_support::runtime_dir_of(self.who.uid, self.who.gid),
        )
        .env_remove("DOCKER_CONFIG")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("B2D_ISO")
        .stdin(Stdio::null());
        if self.store == Store::Beside {
            c.env("XDG_DATA_HOME", self.dir.path().join("data"));
        }
        c.output().unwrap()
    }

    /// stdout of `program args`, which must succeed (the console and the
    /// host agent's log are shown when it did not).
    pub fn ok(&self, program: &str, args: &[&str]) -> String {
        let out = self.run(program, args);
        if !out.status.success() {
            let log = b2d::host::vm::console::read_log(&self.machine_dir().join("serial.log"));
            eprintln!("console:\n{}", b2d::host::vm::console::tail(&log, 40));
            let agent =
                std::fs::read_to_string(self.machine_dir().join("agent.log")).unwrap_or_default();
            eprintln!("agent.log:\n{agent}");
        }
        test_support::assert_ok(&format!("{program} {}", args.join(" ")), &out)
    }

    pub fn b2d(&self, args: &[&str]) -> String {
        self.ok(b2d_bin().to_str().unwrap(), args)
    }

    /// `docker --context b2d-NAME args`, which must succeed.
    pub fn docker(&self, args: &[&str]) -> String {
        let ctx = self.context();
        let mut a = vec!["--context", ctx.as_str()];
        a.extend_from_slice(args);
        self.ok("docker", &a)
    }

    /// `docker --context b2d-NAME args`, whatever it does.
    pub fn docker_run(&self, args: &[&str]) -> Output {
        let ctx = self.context();
        let mut a = vec!["--context", ctx.as_str()];
        a.extend_from_slice(args);
        self.run("docker", &a)
    }

    /// Import a busybox image `bb` with `applets` and `files`.
    pub fn busybox(&self, applets: &[&str], files: &[(&str, &str)]) {
        let tar = test_support::busybox_image(self.dir.path(), applets, files);
        test_support::run("chmod", &["0644", tar.to_str().unwrap()]);
        self.docker(&["import", tar.to_str().unwrap(), "bb"]);
    }
}

impl Drop for UserEnv {
    fn drop(&mut self) {
        let _ = self.run(b2d_bin().to_str().unwrap(), &["rm", "-f", self.name]);
    }
}

/// The path of `p` as `&str`.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
