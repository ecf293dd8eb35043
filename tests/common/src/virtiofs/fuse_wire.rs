//! The FUSE wire format as the guest's side writes and reads it: the
//! opcodes and layouts of `include/uapi/linux/fuse.h` (protocol 7.38),
//! little-endian, and the answers' errors and attributes.

use std::fmt;
use std::io;

pub const IN_HEADER: usize = 40;
pub const OUT_HEADER: usize = 16;
pub const ATTR: usize = 88;
pub const ENTRY_OUT: usize = 40 + ATTR;
pub const OPEN_OUT: usize = 16;

pub const LOOKUP: u32 = 1;
pub const FORGET: u32 = 2;
pub const GETATTR: u32 = 3;
pub const SETATTR: u32 = 4;
pub const READLINK: u32 = 5;
pub const SYMLINK: u32 = 6;
pub const MKNOD: u32 = 8;
pub const MKDIR: u32 = 9;
pub const UNLINK: u32 = 10;
pub const RMDIR: u32 = 11;
pub const RENAME: u32 = 12;
pub const LINK: u32 = 13;
pub const OPEN: u32 = 14;
pub const READ: u32 = 15;
pub const WRITE: u32 = 16;
pub const RELEASE: u32 = 18;
pub const INIT: u32 = 26;
pub const OPENDIR: u32 = 27;
pub const READDIR: u32 = 28;
pub const RELEASEDIR: u32 = 29;
pub const CREATE: u32 = 35;
pub const RENAME2: u32 = 45;

/// `FATTR_MODE`: the SETATTR field that carries a mode.
pub const FATTR_MODE: u32 = 1;

pub fn opcode_name(op: u32) -> &'static str {
    match op {
        LOOKUP => "LOOKUP",
        FORGET => "FORGET",
        GETATTR => "GETATTR",
        SETATTR => "SETATTR",
        READLINK => "READLINK",
        SYMLINK => "SYMLINK",
        MKNOD => "MKNOD",
        MKDIR => "MKDIR",
        UNLINK => "UNLINK",
        RMDIR => "RMDIR",
        RENAME => "RENAME",
        LINK => "LINK",
        OPEN => "OPEN",
        READ => "READ",
        WRITE => "WRITE",
        RELEASE => "RELEASE",
        INIT => "INIT",
        OPENDIR => "OPENDIR",
        READDIR => "READDIR",
        RELEASEDIR => "RELEASEDIR",
        CREATE => "CREATE",
        RENAME2 => "RENAME2",
        _ => "request",
    }
}

/// The error of a FUSE reply, as a positive errno (`libc::ENOENT`...).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The errno's symbolic name, for the common ones.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::EIO => "EIO",
            libc::EBADF => "EBADF",
            libc::EACCES => "EACCES",
            libc::EBUSY => "EBUSY",
            libc::EEXIST => "EEXIST",
            libc::EXDEV => "EXDEV",
            libc::ENOTDIR => "ENOTDIR",
            libc::EISDIR => "EISDIR",
            libc::EINVAL => "EINVAL",
            libc::ENOSPC => "ENOSPC",
            libc::EROFS => "EROFS",
            libc::EMLINK => "EMLINK",
            libc::ENAMETOOLONG => "ENAMETOOLONG",
            libc::ENOSYS => "ENOSYS",
            libc::ENOTEMPTY => "ENOTEMPTY",
            libc::ELOOP => "ELOOP",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            libc::EPROTO => "EPROTO",
            _ => return None,
        })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = io::Error::from_raw_os_error(self.0).to_string();
        // Without std's " (os error N)".
        let text = text.split(" (os error").next().unwrap_or_default();
        match self.name() {
            Some(n) => write!(f, "{n} ({text})"),
            None => write!(f, "errno {} ({text})", self.0),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Errno {}

/// A node's attributes, as the server reports them to the guest (after
/// its id translation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub size: u64,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
}

/// What LOOKUP and the requests that make a node answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub nodeid: u64,
    pub attr: Attr,
}

pub fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

pub fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

pub fn attr_at(b: &[u8], off: usize) -> Attr {
    Attr {
        ino: u64_at(b, off),
        size: u64_at(b, off + 8),
        mode: u32_at(b, off + 60),
        nlink: u32_at(b, off + 64),
        uid: u32_at(b, off + 68),
        gid: u32_at(b, off + 72),
        rdev: u32_at(b, off + 76),
    }
}

pub fn entry_at(b: &[u8], off: usize) -> Entry {
    Entry {
        nodeid: u64_at(b, off),
        attr: attr_at(b, off + 40),
    }
}

/// Little-endian fields one after another.
pub fn le(words: &[u64], halfs: &[u32]) -> Vec<u8> {
    let mut v: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    v.extend(halfs.iter().flat_map(|h| h.to_le_bytes()));
    v
}

pub fn u32s(halfs: &[u32]) -> Vec<u8> {
    le(&[], halfs)
}

/// `name` with its terminating NUL, as FUSE sends names.
pub fn c(name: &[u8]) -> Vec<u8> {
    let mut v = name.to_vec();
    v.push(0);
    v
}
