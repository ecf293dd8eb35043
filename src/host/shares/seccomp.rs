//! A seccomp filter for share servers (virtiofsd, and QEMU when it
//! serves 9p): the guest may not make a host file setuid or setgid.
//! A setuid file the guest leaves in a share would run as the user for
//! whoever on the host starts it. The filter refuses (EPERM) a `chmod`
//! that sets either bit, on files and folders alike, and the creation of
//! a file with either bit. A folder of the host that is setgid already
//! still gives new files its group.
//!
//! `openat2` is refused with ENOSYS: its mode sits in a structure a
//! filter cannot read, and both servers fall back to `openat` (virtiofsd
//! probes it at start). virtiofsd used it to resolve names beneath the
//! shared folder; confined, the shared folder is its root
//! ([`super::confine`]), which holds names in the same way.
//!
//! Installed with `no_new_privs` between fork and exec, so it binds the
//! server and everything it starts, and stacks under the server's own
//! filter.

/// The bits a share may not set from the guest.
const PRIVILEGE_BITS: u32 = libc::S_ISUID | libc::S_ISGID;

/// `fchmodat2`: the same number on every architecture b2d runs on, newer
/// than some libc releases' tables.
const SYS_FCHMODAT2: i64 = 452;

#[cfg(target_arch = "x86_64")]
const ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// (syscall, index of its mode argument).
#[cfg(target_arch = "x86_64")]
const MODE_ARGS: &[(i64, u32)] = &[
    (libc::SYS_chmod, 1),
    (libc::SYS_fchmod, 1),
    (libc::SYS_fchmodat, 2),
    (SYS_FCHMODAT2, 2),
    (libc::SYS_open, 2),
    (libc::SYS_creat, 1),
    (libc::SYS_openat, 3),
    (libc::SYS_mknod, 1),
    (libc::SYS_mknodat, 2),
];
#[cfg(target_arch = "aarch64")]
const MODE_ARGS: &[(i64, u32)] = &[
    (libc::SYS_fchmod, 1),
    (libc::SYS_fchmodat, 2),
    (SYS_FCHMODAT2, 2),
    (libc::SYS_openat, 3),
    (libc::SYS_mknodat, 2),
];

/// Syscall numbers at and above this are x86_64's x32 ABI.
#[cfg(target_arch = "x86_64")]
const X32_BIT: u32 = 0x4000_0000;

// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH_AT: u32 = 4;
fn arg_low(i: u32) -> u32 {
    16 + 8 * i
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

const LD_W_ABS: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
const JEQ_K: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
const JSET_K: u32 = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;
const RET_K: u32 = libc::BPF_RET | libc::BPF_K;

fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA)
}

/// The filter program.
pub fn program() -> Vec<libc::sock_filter> {
    let mut p = vec![
        stmt(LD_W_ABS, ARCH_AT),
        jump(JEQ_K, ARCH, 1, 0),
        stmt(RET_K, errno(libc::ENOSYS)),
        stmt(LD_W_ABS, NR),
    ];
    #[cfg(target_arch = "x86_64")]
    p.extend([
        jump(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, X32_BIT, 0, 1),
        stmt(RET_K, errno(libc::ENOSYS)),
    ]);
    p.extend([
        jump(JEQ_K, libc::SYS_openat2 as u32, 0, 1),
        stmt(RET_K, errno(libc::ENOSYS)),
    ]);
    for &(nr, arg) in MODE_ARGS {
        // nr? load the mode's low word: a privilege bit refuses it.
        p.extend([
            stmt(LD_W_ABS, NR),
            jump(JEQ_K, nr as u32, 0, 3),
            stmt(LD_W_ABS, arg_low(arg)),
            jump(JSET_K, PRIVILEGE_BITS, 0, 1),
            stmt(RET_K, errno(libc::EPERM)),
        ]);
    }
    p.push(stmt(RET_K, libc::SECCOMP_RET_ALLOW));
    p
}

/// Install `prog` on the calling thread (async-signal-safe: for the
/// child between fork and exec).
pub fn install(prog: &[libc::sock_filter]) -> std::io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fprog` points at `prog`, which outlives the call; the
    // kernel copies the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
