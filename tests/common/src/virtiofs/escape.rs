//! Escape attempts against a share server: a tree with the shared folder
//! two levels down and things around it, the crafted requests a hostile
//! guest kernel can send to reach them, and what each one changed on the
//! host outside the share.
//!
//! ```text
//! top/
//!   outer/            victim, victim_dir/, secret (reads "secret")
//!     share/          the served folder: x, x2, sub/, up -> ..
//! ```

use super::{FuseClient, ROOT};
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The tree the attempts aim at.
pub struct Scene {
    pub top: PathBuf,
    pub outer: PathBuf,
    /// The folder to serve.
    pub share: PathBuf,
}

impl Scene {
    /// Lay the tree out under `top` (which must not exist yet). A test
    /// running as root gives it to the server's user afterwards.
    pub fn create(top: &Path) -> Scene {
        let outer = top.join("outer");
        let share = outer.join("share");
        let write = |p: PathBuf, s: &str| {
            std::fs::write(&p, s).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        for d in [share.join("sub"), outer.join("victim_dir")] {
            std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        }
        write(outer.join("victim"), "victim\n");
        write(outer.join("secret"), "secret\n");
        write(share.join("x"), "x\n");
        write(share.join("x2"), "x2\n");
        std::os::unix::fs::symlink("..", share.join("up")).unwrap();
        Scene {
            top: top.to_path_buf(),
            outer,
            share,
        }
    }

    /// Everything under `top` but the share, each path with what it is.
    pub fn outside(&self) -> BTreeMap<PathBuf, String> {
        let mut seen = BTreeMap::new();
        walk(&self.top, &self.top, &self.share, &mut seen);
        seen
    }
}

fn walk(top: &Path, dir: &Path, skip: &Path, seen: &mut BTreeMap<PathBuf, String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for e in entries {
        let path = e.unwrap().path();
        if path == skip {
            continue;
        }
        let m = std::fs::symlink_metadata(&path).unwrap();
        let t = m.file_type();
        let what = if t.is_symlink() {
            let to = std::fs::read_link(&path).unwrap();
            format!("symlink to {}", to.display())
        } else if t.is_dir() {
            "directory".to_string()
        } else if t.is_file() {
            let text = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&text);
            format!(
                "file {:o} ({} links) {text:?}",
                m.mode() & 0o7777,
                m.nlink()
            )
        } else if t.is_fifo() {
            "fifo".to_string()
        } else {
            format!("node of mode {:o}", m.mode())
        };
        let rel = path.strip_prefix(top).unwrap().to_path_buf();
        seen.insert(rel, what);
        if t.is_dir() {
            walk(top, &path, skip, seen);
        }
    }
}

/// One path outside the share that a request made, removed or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Relative to [`Scene::top`].
    pub path: PathBuf,
    pub was: Option<String>,
    pub now: Option<String>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.path.display();
        match (&self.was, &self.now) {
            (None, Some(now)) => write!(f, "made {p} ({now})"),
            (Some(was), None) => write!(f, "removed {p} ({was})"),
            (was, now) => write!(f, "changed {p}: {was:?} -> {now:?}"),
        }
    }
}

/// What changed between two [`Scene::outside`] listings.
pub fn changes(
    before: &BTreeMap<PathBuf, String>,
    after: &BTreeMap<PathBuf, String>,
) -> Vec<Change> {
    let paths: std::collections::BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
    paths
        .into_iter()
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|p| Change {
            path: p.clone(),
            was: before.get(p).cloned(),
            now: after.get(p).cloned(),
        })
        .collect()
}

/// One crafted request and what came of it.
pub struct Attempt {
    /// The request, as a line (`MKDIR ROOT "../escaped"`).
    pub request: String,
    /// The path outside the share (relative to [`Scene::top`]) that the
    /// request aims to make, remove or read.
    pub aim: PathBuf,
    /// The server's answer (`ok`, or the errno).
    pub reply: String,
    /// What changed under `top` outside the share.
    pub outside: Vec<Change>,
}

impl Attempt {
    /// Whether the request changed anything outside the share.
    pub fn escaped(&self) -> bool {
        !self.outside.is_empty()
    }

    /// Whether it changed its aim outside the share, and nothing else.
    pub fn hit(&self) -> bool {
        self.escaped() && self.outside.iter().all(|c| c.path == self.aim)
    }
}

fn shown<T>(r: Result<T, super::Errno>) -> String {
    match r {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    }
}

/// One crafted request: what it is, the path outside the share it aims
/// at (relative to [`Scene::top`]), and how to send it (its reply as a
/// line).
pub struct Request<'a> {
    pub what: String,
    pub aim: PathBuf,
    #[allow(clippy::type_complexity)]
    pub send: Box<dyn Fn(&mut FuseClient) -> String + 'a>,
}

fn req<'a>(
    what: impl Into<String>,
    aim: &str,
    send: impl Fn(&mut FuseClient) -> String + 'a,
) -> Request<'a> {
    Request {
        what: what.into(),
        aim: aim.into(),
        send: Box::new(send),
    }
}

/// The crafted requests, in order (none depends on an earlier one having
/// escaped). Each must change its aim if the server takes its name as
/// sent; none may with a server confined to the share. LOOKUP and CREATE
/// are there too: virtiofsd resolves their names under the share's root
/// (openat2 with RESOLVE_IN_ROOT) even without a sandbox.
pub fn requests(scene: &Scene) -> Vec<Request<'_>> {
    let absolute = scene.outer.join("absolute");
    let abs = absolute.as_os_str().as_bytes().to_vec();
    vec![
        req(r#"LOOKUP ROOT "..""#, "outer", |f| {
            match f.lookup(ROOT, b"..") {
                Ok(e) if e.nodeid == ROOT => "the root".to_string(),
                Ok(e) => format!("node {} (inode {})", e.nodeid, e.attr.ino),
                Err(e) => e.to_string(),
            }
        }),
        req(r#"LOOKUP ROOT "../secret""#, "outer/secret", |f| {
            shown(f.lookup(ROOT, b"../secret"))
        }),
        req(r#"CREATE ROOT "../created""#, "outer/created", |f| {
            shown(f.create(ROOT, b"../created", 0o644, libc::O_RDWR))
        }),
        req(r#"MKDIR ROOT "../escaped""#, "outer/escaped", |f| {
            shown(f.mkdir(ROOT, b"../escaped", 0o755))
        }),
        req(r#"MKDIR ROOT "../../escaped_up""#, "escaped_up", |f| {
            shown(f.mkdir(ROOT, b"../../escaped_up", 0o755))
        }),
        req(r#"MKDIR ROOT "sub/../../slashed""#, "outer/slashed", |f| {
            shown(f.mkdir(ROOT, b"sub/../../slashed", 0o755))
        }),
        req(
            r#"MKDIR ROOT "up/via_symlink" (up -> ..)"#,
            "outer/via_symlink",
            |f| shown(f.mkdir(ROOT, b"up/via_symlink", 0o755)),
        ),
        req(
            format!("MKDIR ROOT {:?} (absolute)", absolute.display()),
            "outer/absolute",
            move |f| shown(f.mkdir(ROOT, &abs, 0o755)),
        ),
        req(r#"MKNOD ROOT "../fifo" (a fifo)"#, "outer/fifo", |f| {
            shown(f.mknod(ROOT, b"../fifo", libc::S_IFIFO | 0o644, 0))
        }),
        req(r#"SYMLINK ROOT "../link" -> "/""#, "outer/link", |f| {
            shown(f.symlink(ROOT, b"../link", b"/"))
        }),
        req(
            r#"LINK x as ROOT "../hardlink""#,
            "outer/hardlink",
            |f| match f.lookup(ROOT, b"x") {
                Ok(x) => shown(f.link(x.nodeid, ROOT, b"../hardlink")),
                Err(e) => format!("lookup of x: {e}"),
            },
        ),
        req(r#"UNLINK ROOT "../victim""#, "outer/victim", |f| {
            shown(f.unlink(ROOT, b"../victim"))
        }),
        req(r#"RMDIR ROOT "../victim_dir""#, "outer/victim_dir", |f| {
            shown(f.rmdir(ROOT, b"../victim_dir"))
        }),
        req(
            r#"RENAME ROOT "x2" to ROOT "../moved""#,
            "outer/moved",
            |f| shown(f.rename(ROOT, b"x2", ROOT, b"../moved")),
        ),
        req(
            r#"RENAME ROOT "../secret" to ROOT "stolen", then read it"#,
            "outer/secret",
            |f| {
                let moved = shown(f.rename(ROOT, b"../secret", ROOT, b"stolen"));
                let read = f.lookup(ROOT, b"stolen").and_then(|e| {
                    let fh = f.open(e.nodeid, libc::O_RDONLY)?;
                    let data = f.read(e.nodeid, fh, 0, 4096);
                    f.release(e.nodeid, fh)?;
                    data
                });
                match read {
                    Ok(d) => format!("{moved}; read {:?}", String::from_utf8_lossy(&d)),
                    Err(_) => moved,
                }
            },
        ),
    ]
}

/// Send every request of [`requests`], each one's effect outside the
/// share taken on the host right after its reply.
pub fn attempt_all(client: &mut FuseClient, scene: &Scene) -> Vec<Attempt> {
    let mut done = Vec::new();
    for r in requests(scene) {
        let before = scene.outside();
        let reply = (r.send)(client);
        let outside = changes(&before, &scene.outside());
        done.push(Attempt {
            request: r.what,
            aim: r.aim,
            reply,
            outside,
        });
    }
    done
}

/// The attempts as a table, for a failure message.
pub fn report(attempts: &[Attempt]) -> String {
    let mut s = String::new();
    for a in attempts {
        let what = if a.escaped() {
            let lines: Vec<String> = a.outside.iter().map(|c| c.to_string()).collect();
            lines.join("; ")
        } else {
            "nothing outside changed".to_string()
        };
        s += &format!("{}\n    reply: {}\n    {what}\n", a.request, a.reply);
    }
    s
}
