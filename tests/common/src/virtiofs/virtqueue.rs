//! The guest's side of two split virtqueues (virtio 1.x, 2.7) in a memfd
//! that stands for the guest's RAM: the high-priority queue 0 and the
//! request queue 1 of a virtio-fs device.
//!
//! One request is in flight at a time: every request uses descriptors 0
//! (what the driver wrote) and 1 (room for the reply) of its queue, and
//! the same two buffers. Every wait is bounded by [`TIMEOUT`].

use super::vhost_user::TIMEOUT;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, Ordering};
use std::time::Instant;

/// The most a request or a reply may carry, headers included.
pub const BUF_SIZE: usize = 512 << 10;

/// How many queues: the high-priority one and one request queue.
pub const QUEUES: u32 = 2;

// Descriptor flags.
const DESC_NEXT: u16 = 1;
const DESC_WRITE: u16 = 2;

// The guest's memory: at guest physical address 0, queue i's rings at
// i * RING_STRIDE (descriptor table, then avail ring, then used ring),
// then the request buffer, then the reply buffer.
pub const QUEUE_SIZE: u16 = 16;
const RING_STRIDE: u64 = 0x1000;
const AVAIL: u64 = 16 * QUEUE_SIZE as u64;
const USED: u64 = AVAIL + 0x100;
const OUT_BUF: u64 = 0x10000;
const IN_BUF: u64 = OUT_BUF + BUF_SIZE as u64;
pub const MEM_SIZE: usize = IN_BUF as usize + BUF_SIZE;

fn last_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The guest's RAM: a memfd mapped shared here and, after SET_MEM_TABLE,
/// in virtiofsd.
struct GuestMemory {
    file: File,
    ptr: *mut u8,
}

impl GuestMemory {
    fn new() -> io::Result<GuestMemory> {
        // SAFETY: a NUL-terminated name and valid flags; the result is checked.
        let fd = unsafe { libc::memfd_create(c"b2d-test-guest-ram".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(last_error("memfd_create"));
        }
        // SAFETY: `fd` was just created and nothing else owns it.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.set_len(MEM_SIZE as u64)?;
        // SAFETY: a new shared mapping of a file at least MEM_SIZE long;
        // the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MEM_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(last_error("mmap of the guest memory"));
        }
        Ok(GuestMemory {
            file,
            ptr: ptr.cast(),
        })
    }

    /// Where `addr` (a guest physical address) lies in this process.
    fn host(&self, addr: u64, len: usize, align: usize) -> *mut u8 {
        let end = (addr as usize).checked_add(len);
        assert!(
            end.is_some_and(|e| e <= MEM_SIZE) && addr as usize % align == 0,
            "guest memory access of {len} bytes at {addr:#x} is out of bounds"
        );
        // SAFETY: in bounds of the mapping, checked just above.
        unsafe { self.ptr.add(addr as usize) }
    }

    fn write(&self, addr: u64, data: &[u8]) {
        let p = self.host(addr, data.len(), 1);
        // SAFETY: `p` has room for `data` (checked by `host`); the mapping
        // never overlaps a Rust buffer.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) }
    }

    fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let p = self.host(addr, len, 1);
        let mut v = vec![0; len];
        // SAFETY: `p` holds `len` bytes (checked by `host`).
        unsafe { std::ptr::copy_nonoverlapping(p, v.as_mut_ptr(), len) };
        v
    }

    fn store16(&self, addr: u64, v: u16) {
        // SAFETY: in bounds and aligned (checked by `host`); volatile as
        // virtiofsd reads it concurrently.
        unsafe { std::ptr::write_volatile(self.host(addr, 2, 2).cast(), v.to_le()) }
    }

    fn store32(&self, addr: u64, v: u32) {
        // SAFETY: as in `store16`.
        unsafe { std::ptr::write_volatile(self.host(addr, 4, 4).cast(), v.to_le()) }
    }

    fn store64(&self, addr: u64, v: u64) {
        // SAFETY: as in `store16`.
        unsafe { std::ptr::write_volatile(self.host(addr, 8, 8).cast(), v.to_le()) }
    }

    fn load16(&self, addr: u64) -> u16 {
        // SAFETY: in bounds and aligned (checked by `host`); volatile as
        // virtiofsd writes it concurrently.
        u16::from_le(unsafe { std::ptr::read_volatile(self.host(addr, 2, 2).cast()) })
    }

    fn load32(&self, addr: u64) -> u32 {
        // SAFETY: as in `load16`.
        u32::from_le(unsafe { std::ptr::read_volatile(self.host(addr, 4, 4).cast()) })
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, of MEM_SIZE bytes, used by no
        // one after this.
        unsafe { libc::munmap(self.ptr.cast(), MEM_SIZE) };
    }
}

fn eventfd() -> io::Result<File> {
    // SAFETY: valid flags; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(last_error("eventfd"));
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// One split virtqueue: where its rings lie, how far the driver and the
/// device got, and its kick and call eventfds.
struct Queue {
    rings: u64,
    avail_idx: u16,
    used_seen: u16,
    kick: File,
    call: File,
}

/// The queues and the memory they live in.
pub struct Virtqueues {
    mem: GuestMemory,
    queues: Vec<Queue>,
}

/// What the back end needs to know of one queue: its rings (as addresses
/// of this process) and its eventfds.
pub struct Rings {
    pub desc: u64,
    pub used: u64,
    pub avail: u64,
    pub call: RawFd,
    pub kick: RawFd,
}

impl Virtqueues {
    pub fn new() -> io::Result<Virtqueues> {
        let mem = GuestMemory::new()?;
        let mut queues = Vec::new();
        for index in 0..QUEUES {
            queues.push(Queue {
                rings: u64::from(index) * RING_STRIDE,
                avail_idx: 0,
                used_seen: 0,
                kick: eventfd()?,
                call: eventfd()?,
            });
        }
        Ok(Virtqueues { mem, queues })
    }

    /// The memfd, and where it is mapped here (the guest's physical
    /// address 0).
    pub fn memory(&self) -> (RawFd, u64) {
        (self.mem.file.as_raw_fd(), self.mem.ptr as u64)
    }

    pub fn rings(&self, index: u32) -> Rings {
        let q = &self.queues[index as usize];
        let at = self.mem.ptr as u64 + q.rings;
        Rings {
            desc: at,
            used: at + USED,
            avail: at + AVAIL,
            call: q.call.as_raw_fd(),
            kick: q.kick.as_raw_fd(),
        }
    }

    /// Put `request` on queue `queue` with `reply_room` bytes for the
    /// device to write, kick, and wait for the device to return it: the
    /// bytes it wrote. A hang-up on `hangup` (the vhost-user socket)
    /// ends the wait.
    pub fn transfer(
        &mut self,
        queue: usize,
        request: &[u8],
        reply_room: usize,
        hangup: RawFd,
    ) -> io::Result<Vec<u8>> {
        assert!(
            request.len() <= BUF_SIZE && reply_room <= BUF_SIZE,
            "a request of {} bytes with {reply_room} for the reply does not fit the {BUF_SIZE}-byte buffers",
            request.len()
        );
        let m = &self.mem;
        let q = &mut self.queues[queue];
        m.write(OUT_BUF, request);
        let desc = |i: u64, addr: u64, len: usize, flags: u16, next: u16| {
            let d = q.rings + 16 * i;
            m.store64(d, addr);
            m.store32(d + 8, len as u32);
            m.store16(d + 12, flags);
            m.store16(d + 14, next);
        };
        if reply_room > 0 {
            desc(0, OUT_BUF, request.len(), DESC_NEXT, 1);
            desc(1, IN_BUF, reply_room, DESC_WRITE, 0);
        } else {
            desc(0, OUT_BUF, request.len(), 0, 0);
        }
        let slot = u64::from(q.avail_idx % QUEUE_SIZE);
        m.store16(q.rings + AVAIL + 4 + 2 * slot, 0);
        q.avail_idx = q.avail_idx.wrapping_add(1);
        // The ring entry before the index that publishes it, and the index
        // before the kick.
        fence(Ordering::SeqCst);
        m.store16(q.rings + AVAIL + 2, q.avail_idx);
        fence(Ordering::SeqCst);
        q.kick.write_all(&1u64.to_le_bytes())?;
        let len = self.wait_used(queue, hangup)?;
        Ok(self.mem.read(IN_BUF, (len as usize).min(reply_room)))
    }

    /// Wait (up to [`TIMEOUT`]) until the device returns the request on
    /// `queue`; the number of bytes it wrote.
    fn wait_used(&mut self, queue: usize, hangup: RawFd) -> io::Result<u32> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let q = &mut self.queues[queue];
            if self.mem.load16(q.rings + USED + 2) != q.used_seen {
                fence(Ordering::SeqCst);
                let elem = q.rings + USED + 4 + 8 * u64::from(q.used_seen % QUEUE_SIZE);
                let (id, len) = (self.mem.load32(elem), self.mem.load32(elem + 4));
                q.used_seen = q.used_seen.wrapping_add(1);
                if id != 0 {
                    return Err(io::Error::other(format!(
                        "queue {queue}: the device returned descriptor {id}, never made available"
                    )));
                }
                return Ok(len);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no reply on queue {queue} within {} s", TIMEOUT.as_secs()),
                ));
            }
            let mut fds = [
                libc::pollfd {
                    fd: q.call.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: hangup,
                    events: libc::POLLRDHUP,
                    revents: 0,
                },
            ];
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: `fds` is an array of two initialised pollfds.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
            if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return Err(last_error("poll"));
            }
            if fds[0].revents & libc::POLLIN != 0 {
                let _ = q.call.read(&mut [0; 8]);
            }
            let gone = libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR;
            if fds[1].revents & gone != 0 && self.mem.load16(q.rings + USED + 2) == q.used_seen {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    format!("the back end closed its socket (did it exit?) with the request on queue {queue} unanswered"),
                ));
            }
        }
    }
}
