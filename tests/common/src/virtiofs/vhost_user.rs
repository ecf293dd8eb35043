//! The VMM's half of a vhost-user virtio-fs device, written by hand: the
//! messages of QEMU's `docs/interop/vhost-user.rst` that a back end needs
//! before it serves requests (features, memory table, each queue's rings
//! and eventfds), each one acknowledged (REPLY_ACK) so a refusal is seen.

use super::virtqueue::{Virtqueues, MEM_SIZE, QUEUES, QUEUE_SIZE};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// The bound on every wait for virtiofsd: a reply on the socket or on a
/// queue.
pub const TIMEOUT: Duration = Duration::from_secs(10);

// Requests of the front end (the numbers of the vhost-user spec).
const GET_FEATURES: u32 = 1;
const SET_FEATURES: u32 = 2;
const SET_OWNER: u32 = 3;
const SET_MEM_TABLE: u32 = 5;
const SET_VRING_NUM: u32 = 8;
const SET_VRING_ADDR: u32 = 9;
const SET_VRING_BASE: u32 = 10;
const SET_VRING_KICK: u32 = 12;
const SET_VRING_CALL: u32 = 13;
const GET_PROTOCOL_FEATURES: u32 = 15;
const SET_PROTOCOL_FEATURES: u32 = 16;
const SET_VRING_ENABLE: u32 = 18;

// Header flags: the protocol version, "this is a reply", "ack this".
const VERSION: u32 = 0x1;
const REPLY: u32 = 1 << 2;
const NEED_REPLY: u32 = 1 << 3;

const F_VERSION_1: u64 = 1 << 32;
const F_PROTOCOL_FEATURES: u64 = 1 << 30;
const PROTOCOL_F_REPLY_ACK: u64 = 1 << 3;

fn request_name(code: u32) -> &'static str {
    match code {
        GET_FEATURES => "GET_FEATURES",
        SET_FEATURES => "SET_FEATURES",
        SET_OWNER => "SET_OWNER",
        SET_MEM_TABLE => "SET_MEM_TABLE",
        SET_VRING_NUM => "SET_VRING_NUM",
        SET_VRING_ADDR => "SET_VRING_ADDR",
        SET_VRING_BASE => "SET_VRING_BASE",
        SET_VRING_KICK => "SET_VRING_KICK",
        SET_VRING_CALL => "SET_VRING_CALL",
        GET_PROTOCOL_FEATURES => "GET_PROTOCOL_FEATURES",
        SET_PROTOCOL_FEATURES => "SET_PROTOCOL_FEATURES",
        SET_VRING_ENABLE => "SET_VRING_ENABLE",
        _ => "request",
    }
}

/// A connected, configured vhost-user virtio-fs back end.
pub struct Device {
    sock: UnixStream,
    queues: Virtqueues,
}

impl Device {
    /// Connect to the back end listening on `sock` and set it up as QEMU
    /// would: features, memory table, both queues enabled.
    pub fn connect(sock: &Path) -> io::Result<Device> {
        let stream = UnixStream::connect(sock)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", sock.display())))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut d = Device {
            sock: stream,
            queues: Virtqueues::new()?,
        };
        let features = d.get_u64(GET_FEATURES)?;
        let needed = F_VERSION_1 | F_PROTOCOL_FEATURES;
        if features & needed != needed {
            return Err(io::Error::other(format!(
                "the back end offers features {features:#x}, without VERSION_1 or PROTOCOL_FEATURES"
            )));
        }
        let protocol = d.get_u64(GET_PROTOCOL_FEATURES)?;
        if protocol & PROTOCOL_F_REPLY_ACK == 0 {
            return Err(io::Error::other(format!(
                "the back end offers protocol features {protocol:#x}, without REPLY_ACK"
            )));
        }
        // From here on every request is acknowledged, so a refusal is seen.
        let ack = PROTOCOL_F_REPLY_ACK.to_le_bytes();
        d.send(SET_PROTOCOL_FEATURES, 0, &ack, None)?;
        d.set(SET_OWNER, &[], None)?;
        d.set(SET_FEATURES, &needed.to_le_bytes(), None)?;
        // One region: guest physical address 0, mapped here at `base`.
        let (memfd, base) = d.queues.memory();
        let mut table = pair(1, 0);
        for v in [0, MEM_SIZE as u64, base, 0] {
            table.extend(v.to_le_bytes());
        }
        d.set(SET_MEM_TABLE, &table, Some(memfd))?;
        for index in 0..QUEUES {
            let r = d.queues.rings(index);
            d.set(SET_VRING_NUM, &pair(index, QUEUE_SIZE.into()), None)?;
            // The descriptor table, used ring and avail ring, as addresses
            // of this process (the spec's "user addresses"); no log.
            let mut addr = pair(index, 0);
            for a in [r.desc, r.used, r.avail, 0] {
                addr.extend(a.to_le_bytes());
            }
            d.set(SET_VRING_ADDR, &addr, None)?;
            d.set(SET_VRING_BASE, &pair(index, 0), None)?;
            let which = u64::from(index).to_le_bytes();
            d.set(SET_VRING_CALL, &which, Some(r.call))?;
            d.set(SET_VRING_KICK, &which, Some(r.kick))?;
            d.set(SET_VRING_ENABLE, &pair(index, 1), None)?;
        }
        Ok(d)
    }

    /// Put `request` on queue `queue` with `reply_room` bytes for the
    /// back end to write, and wait (bounded) until it is done: the bytes
    /// it wrote.
    pub fn transfer(
        &mut self,
        queue: usize,
        request: &[u8],
        reply_room: usize,
    ) -> io::Result<Vec<u8>> {
        let hangup = self.sock.as_raw_fd();
        self.queues.transfer(queue, request, reply_room, hangup)
    }

    /// Send one message: the header, `body`, and `fd` if any.
    fn send(&mut self, code: u32, flags: u32, body: &[u8], fd: Option<RawFd>) -> io::Result<()> {
        let mut buf = Vec::with_capacity(12 + body.len());
        for v in [code, VERSION | flags, body.len() as u32] {
            buf.extend(v.to_le_bytes());
        }
        buf.extend(body);
        let what = request_name(code);
        let Some(fd) = fd else {
            return self
                .sock
                .write_all(&buf)
                .map_err(|e| io::Error::new(e.kind(), format!("sending {what}: {e}")));
        };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: a pure computation on a constant.
        let space = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
        let mut control = vec![0u64; space.div_ceil(8)];
        // SAFETY: all zeroes is a valid msghdr (no buffers yet).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: `msg` has a control buffer of `space` bytes, 8-aligned,
        // room for one header and one fd; `iov` and `control` outlive the
        // sendmsg, whose result is checked.
        let sent = unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
            libc::sendmsg(self.sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
        };
        if sent != buf.len() as isize {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("sending {what} ({sent} bytes sent): {e}"),
            ));
        }
        Ok(())
    }

    /// Read the reply to `code`: its body.
    fn recv(&mut self, code: u32) -> io::Result<Vec<u8>> {
        let what = request_name(code);
        let fail = |e: io::Error| {
            let why = match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    format!("no reply within {} s", TIMEOUT.as_secs())
                }
                io::ErrorKind::UnexpectedEof => "the back end closed its socket".to_string(),
                _ => e.to_string(),
            };
            io::Error::new(e.kind(), format!("{what}: {why}"))
        };
        let mut hdr = [0; 12];
        self.sock.read_exact(&mut hdr).map_err(fail)?;
        let word = |i: usize| u32::from_le_bytes(hdr[4 * i..4 * i + 4].try_into().unwrap());
        let (got, flags, size) = (word(0), word(1), word(2));
        if got != code || flags & REPLY == 0 || size > 4096 {
            return Err(io::Error::other(format!(
                "{what}: a reply of request {got}, flags {flags:#x}, {size} bytes"
            )));
        }
        let mut body = vec![0; size as usize];
        self.sock.read_exact(&mut body).map_err(fail)?;
        Ok(body)
    }

    /// Ask for a u64 (the features).
    fn get_u64(&mut self, code: u32) -> io::Result<u64> {
        self.send(code, 0, &[], None)?;
        let body = self.recv(code)?;
        let bytes: [u8; 8] = body.as_slice().try_into().map_err(|_| {
            io::Error::other(format!(
                "{}: a reply of {} bytes, not 8",
                request_name(code),
                body.len()
            ))
        })?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Send a request and wait for its acknowledgement, which must be 0
    /// (success).
    fn set(&mut self, code: u32, body: &[u8], fd: Option<RawFd>) -> io::Result<()> {
        self.send(code, NEED_REPLY, body, fd)?;
        let ack = self.recv(code)?;
        if ack != [0; 8] {
            return Err(io::Error::other(format!(
                "the back end refused {}",
                request_name(code)
            )));
        }
        Ok(())
    }
}

/// A vring state message: a queue index and a number.
fn pair(index: u32, num: u32) -> Vec<u8> {
    [index, num].iter().flat_map(|v| v.to_le_bytes()).collect()
}
