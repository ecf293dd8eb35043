//! How a share server starts: confined, as the user who runs `b2d up`.
//!
//! Between fork and exec the server's process enters a user and mount
//! namespace of its own (its uid and gid mapped to themselves, so it has
//! no more rights on the host than before, and none after exec), where
//! each shared folder is bind-mounted on a "view" folder in the machine's
//! directory with the [masks](super::masks) mounted over what must stay
//! hidden: an empty read-only folder or file from a small read-only
//! tmpfs. The server serves the view, so whatever the guest asks, the
//! hidden paths are empty; nothing of this is visible outside the
//! namespace, and it goes with the server. Then the [setuid
//! filter](super::seccomp) is installed.
//!
//! virtiofsd also sandboxes itself (`--sandbox namespace`: a user, mount,
//! pid and network namespace of its own, with the view as its root), so a
//! crafted name (`../x`) cannot leave the share. QEMU serving 9p already
//! refuses such names.
//!
//! Every path the child uses is opened without following symlinks: a
//! share whose folder was replaced by a symlink (by a guest writing an
//! outer share) does not start.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One shared folder as its server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The folder on the host (absolute, no symlinks in it).
    pub source: PathBuf,
    /// Where it is mounted in the server's namespace: an empty folder of
    /// the machine's directory.
    pub at: PathBuf,
    /// Paths inside it (relative) shown empty.
    pub masks: Vec<PathBuf>,
}

/// Why share servers cannot be confined here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("this host refuses unprivileged user namespaces ({0})")]
    NoUserNamespace(&'static str),
}

/// What the child needs, prepared before the fork (the child only makes
/// system calls: it must not allocate).
pub struct Prepared {
    namespace: Option<Namespace>,
    filter: Vec<libc::sock_filter>,
}

struct Namespace {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    staging: CString,
    views: Vec<PreparedView>,
}

struct PreparedView {
    source: CString,
    at: CString,
    masks: Vec<CString>,
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a path"))
}

/// Prepare the confinement of a server of `views` (none: the filter
/// only, no namespace), started by this process's user. `staging` is an
/// empty folder of the machine's directory where the masks' tmpfs goes.
pub fn prepare(views: Option<&[View]>, staging: &Path) -> io::Result<Prepared> {
    let ids = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    prepare_as(views, staging, ids)
}

/// [`prepare`] for a child that runs as `uid`:`gid` by the time it is
/// confined (a launcher that switches user first).
pub fn prepare_as(
    views: Option<&[View]>,
    staging: &Path,
    (uid, gid): (u32, u32),
) -> io::Result<Prepared> {
    let namespace = match views {
        None => None,
        Some(views) => Some(Namespace {
            uid_map: format!("{uid} {uid} 1").into_bytes(),
            gid_map: format!("{gid} {gid} 1").into_bytes(),
            staging: cstr(staging)?,
            views: views
                .iter()
                .map(|v| {
                    Ok(PreparedView {
                        source: cstr(&v.source)?,
                        at: cstr(&v.at)?,
                        masks: v.masks.iter().map(|m| cstr(m)).collect::<io::Result<_>>()?,
                    })
                })
                .collect::<io::Result<_>>()?,
        }),
    };
    Ok(Prepared {
        namespace,
        filter: super::seccomp::program(),
    })
}

impl Prepared {
    /// Start `cmd` confined.
    pub fn apply(self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        // SAFETY: `enter` makes system calls only, on data prepared
        // before the fork, and writes only static text to stderr.
        unsafe { cmd.pre_exec(move || self.enter()) };
    }

    /// In the child: the namespace, the views and masks, the filter.
    fn enter(&self) -> io::Result<()> {
        if let Some(ns) = &self.namespace {
            step("entering a user namespace", enter_namespace(ns))?;
            step("masking the hidden paths", mount_views(ns))?;
        }
        step(
            "installing the setuid filter",
            super::seccomp::install(&self.filter),
        )
    }
}

/// On failure, say which step failed on stderr (the server's log).
fn step<T>(what: &'static str, r: io::Result<T>) -> io::Result<T> {
    if r.is_err() {
        let parts: [&[u8]; 3] = [
            b"b2d: confining the share server: ",
            what.as_bytes(),
            b" failed\n",
        ];
        for p in parts {
            // SAFETY: writes a static buffer to fd 2.
            unsafe { libc::write(2, p.as_ptr().cast(), p.len()) };
        }
    }
    r
}

fn check(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn write_file(path: &CStr, data: &[u8]) -> io::Result<()> {
    // SAFETY: a NUL-terminated path; the fd is closed below.
    let fd = check(unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) }.into())?;
    // SAFETY: `fd` was just opened and is owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: writes `data` to an open fd.
    let n = check(unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) } as _)?;
    if n as usize != data.len() {
        return Err(io::ErrorKind::WriteZero.into());
    }
    Ok(())
}

fn enter_namespace(ns: &Namespace) -> io::Result<()> {
    // SAFETY: unshare with flags only.
    check(unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) }.into())?;
    write_file(c"/proc/self/setgroups", b"deny")?;
    write_file(c"/proc/self/uid_map", &ns.uid_map)?;
    write_file(c"/proc/self/gid_map", &ns.gid_map)?;
    // Nothing mounted here reaches the host's namespace.
    mount(None, c"/", None, libc::MS_REC | libc::MS_SLAVE, None)
}

fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let p = |c: Option<&CStr>| c.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: NUL-terminated strings or null pointers.
    let r = unsafe { libc::mount(p(src), target.as_ptr(), p(fstype), flags, p(data).cast()) };
    check(r.into()).map(drop)
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// `openat2` of `path` beneath `dir` without following any symlink.
fn open_beneath(dir: RawFd, path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    openat2(dir, path, flags, libc::RESOLVE_BENEATH)
}

/// `openat2` of `path` (from `dir`) without following any symlink.
fn openat2(dir: RawFd, path: &CStr, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    // SAFETY: all-zero is a valid `open_how`.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: a valid path and `open_how` for the call's duration.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })?;
    // SAFETY: a new fd, owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A detached copy of the mount tree at `fd` (recursive: what is mounted
/// below comes along).
fn clone_tree(fd: RawFd, recursive: bool) -> io::Result<OwnedFd> {
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_EMPTY_PATH as libc::c_uint
        | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: an open fd and an empty path.
    let t = check(unsafe { libc::syscall(libc::SYS_open_tree, fd, c"".as_ptr(), flags) })?;
    // SAFETY: a new fd, owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(t as RawFd) })
}

/// Attach the detached tree `tree` on the folder or file `onto`.
fn attach(tree: &OwnedFd, onto: &OwnedFd) -> io::Result<()> {
    // SAFETY: two open fds and empty paths.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            onto.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// The folder at the absolute `path`, with no symlink on the way.
fn open_path(path: &CStr) -> io::Result<OwnedFd> {
    openat2(
        libc::AT_FDCWD,
        path,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

fn mount_views(ns: &Namespace) -> io::Result<()> {
    if ns.views.iter().all(|v| v.masks.is_empty()) {
        return mount_plain_views(ns);
    }
    // The masks' source: a tiny tmpfs with an empty folder and file,
    // then read-only (the superblock, so every bind of it is too).
    let tmpfs_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount(
        Some(c"b2d-hidden"),
        &ns.staging,
        Some(c"tmpfs"),
        tmpfs_flags,
        Some(c"size=4k,nr_inodes=4,mode=0755"),
    )?;
    let staging = open_path(&ns.staging)?;
    // SAFETY: a relative name under an open folder.
    check(unsafe { libc::mkdirat(staging.as_raw_fd(), c"d".as_ptr(), 0o555) }.into())?;
    let file_flags = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC;
    // SAFETY: as above; the new fd is closed at once.
    let f = check(
        unsafe { libc::openat(staging.as_raw_fd(), c"f".as_ptr(), file_flags, 0o444) }.into(),
    )?;
    // SAFETY: `f` was just opened.
    drop(unsafe { OwnedFd::from_raw_fd(f as RawFd) });
    mount(
        None,
        &ns.staging,
        None,
        libc::MS_REMOUNT | libc::MS_RDONLY | tmpfs_flags,
        Some(c"size=4k,nr_inodes=4,mode=0755"),
    )?;
    let empty_dir = open_beneath(staging.as_raw_fd(), c"d", libc::O_PATH)?;
    let empty_file = open_beneath(staging.as_raw_fd(), c"f", libc::O_PATH)?;
    for v in &ns.views {
        let root = view(v)?;
        for m in &v.masks {
            let target = match open_beneath(root.as_raw_fd(), m, libc::O_PATH) {
                Ok(t) => t,
                // Gone since the plan: nothing to hide.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            // SAFETY: all-zero is a valid `stat`; fstat fills it.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: an open fd and a stat buffer.
            check(unsafe { libc::fstat(target.as_raw_fd(), &mut st) }.into())?;
            let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
            let source = if is_dir { &empty_dir } else { &empty_file };
            attach(&clone_tree(source.as_raw_fd(), false)?, &target)?;
        }
    }
    Ok(())
}

fn mount_plain_views(ns: &Namespace) -> io::Result<()> {
    for v in &ns.views {
        view(v)?;
    }
    Ok(())
}

/// Mount the view of `v` and open its root.
fn view(v: &PreparedView) -> io::Result<OwnedFd> {
    let source = open_path(&v.source)?;
    let at = open_path(&v.at)?;
    attach(&clone_tree(source.as_raw_fd(), true)?, &at)?;
    // The folder now, not what it covers.
    open_path(&v.at)
}

/// Whether share servers can be confined here: tried in a child that
/// enters a namespace as [`Prepared::apply`] does and mounts in it.
pub fn available() -> Result<(), Refused> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    let ns = Namespace {
        uid_map: format!("{uid} {uid} 1").into_bytes(),
        gid_map: format!("{gid} {gid} 1").into_bytes(),
        staging: CString::default(),
        views: Vec::new(),
    };
    // SAFETY: the child makes system calls only, then _exit.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let code = match enter_namespace(&ns) {
                Ok(()) => 0,
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => 3,
                Err(_) => 4,
            };
            // SAFETY: ends the child without running the parent's exit code.
            unsafe { libc::_exit(code) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
                Ok(nix::sys::wait::WaitStatus::Exited(_, 3)) => Err(Refused::NoUserNamespace(
                    "creating one or mounting in it is not permitted: see kernel.unprivileged_userns_clone, user.max_user_namespaces or AppArmor's restrict_unprivileged_userns",
                )),
                _ => Err(Refused::NoUserNamespace("the probe failed")),
            }
        }
        Err(_) => Err(Refused::NoUserNamespace("cannot fork to probe")),
    }
}

#[cfg(test)]
#[path = "confine_tests.rs"]
mod tests;
