//! The stream multiplexer both agents run over the tunnel channel (frames
//! and limits in [`crate::wire::tunnel`]): the host side opens a stream
//! for each connection it accepts on 127.0.0.1; the guest side dials the
//! guest port and pumps bytes both ways.
//!
//! Each stream has two pump threads: socket → channel, sending at most the
//! credit the peer gave, and channel → socket, returning credit as bytes
//! are written. The channel reader never blocks on a socket, so a stalled
//! connection stalls only itself. A peer that sends beyond its credit
//! loses that stream; an unreadable frame ends the session.
//!
//! Everything a peer can make a side hold is bounded: a stream's bytes by
//! the window, the chunks they wait in by [`queue`], the streams by
//! [`MAX_STREAMS`]. A write on the channel that cannot go on (the peer
//! stopped reading, and the channel has a write timeout) ends the
//! session instead of holding every stream up.

use crate::wire::tunnel::{self as wire, Frame, Kind, MAX_DATA, MAX_STREAMS, WINDOW};
use queue::{Chunk, Queue};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

#[path = "mux_queue.rs"]
mod queue;

/// How the guest side reaches guest port P.
pub type Dialer = Box<dyn Fn(u16) -> io::Result<TcpStream> + Send + Sync>;

/// Where a side writes its frames.
pub trait Channel: Write + Send {
    /// End the session: a write failed part-way, so the channel is out of
    /// step. A socket shuts down (the reader of the session sees its
    /// end); a device file has nothing to do.
    fn end(&self) {}
}

impl Channel for std::os::unix::net::UnixStream {
    fn end(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Channel for std::fs::File {}

type Out = Box<dyn Channel>;

struct Stream {
    id: u32,
    sock: OnceLock<TcpStream>,
    /// Bytes this side may still send.
    credit: Mutex<u64>,
    cv: Condvar,
    /// What waits for the downlink thread.
    queue: Queue,
    /// Bytes received and not yet written to the socket.
    queued: AtomicU64,
    /// Chunks handed to the downlink thread and not yet written.
    pending: AtomicU64,
    /// Bytes the reader wrote itself and has not credited yet.
    owed: AtomicU64,
    /// Held while writing to the socket (the downlink thread, or the
    /// reader writing a chunk itself when nothing waits before it).
    writing: Mutex<()>,
    dead: AtomicBool,
    /// Pump threads still running.
    pumps: AtomicU8,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Stream {
    fn new(id: u32) -> Arc<Stream> {
        let st = Stream {
            id,
            sock: OnceLock::new(),
            credit: Mutex::new(u64::from(WINDOW)),
            cv: Condvar::new(),
            queue: Queue::default(),
            queued: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            owed: AtomicU64::new(0),
            writing: Mutex::new(()),
            dead: AtomicBool::new(false),
            pumps: AtomicU8::new(2),
        };
        Arc::new(st)
    }
}

/// One side of the tunnel. The guest side has a dialer and answers OPEN;
/// the host side has none and opens streams itself.
pub struct Mux {
    out: Mutex<Option<Out>>,
    streams: Mutex<HashMap<u32, Arc<Stream>>>,
    next: AtomicU32,
    dial: Option<Dialer>,
}

impl Mux {
    /// `first_id`: the host's first stream id (make it differ between
    /// agent runs, so a frame of a stream before cannot land in a new one).
    pub fn new(dial: Option<Dialer>, first_id: u32) -> Arc<Mux> {
        Arc::new(Mux {
            out: Mutex::new(None),
            streams: Mutex::new(HashMap::new()),
            next: AtomicU32::new(first_id.max(1)),
            dial,
        })
    }

    /// Where frames go from now on (the channel of a new session).
    pub fn connect(&self, out: Out) {
        *lock(&self.out) = Some(out);
    }

    pub fn streams(&self) -> usize {
        lock(&self.streams).len()
    }

    /// Write one frame. A failed write ends the session: the frame may be
    /// half written, and what follows must not block behind it.
    fn send(&self, kind: Kind, id: u32, data: &[u8]) -> io::Result<()> {
        let mut out = lock(&self.out);
        let w = out.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        let wrote = w
            .write_all(&wire::encode(kind, id, data))
            .and_then(|()| w.flush());
        if wrote.is_err() {
            w.end();
            *out = None;
        }
        wrote
    }

    /// A new stream `id`, unless [`MAX_STREAMS`] are open.
    fn add(&self, id: u32) -> Option<Arc<Stream>> {
        let mut all = lock(&self.streams);
        if all.len() >= MAX_STREAMS || all.contains_key(&id) {
            return None;
        }
        let st = Stream::new(id);
        all.insert(id, st.clone());
        Some(st)
    }

    /// Start a host session: the guest drops what it had.
    pub fn hello(&self) -> io::Result<()> {
        self.send(Kind::Hello, 0, &[])
    }

    /// Host side: carry `sock`, accepted for guest port `port`.
    pub fn open(self: &Arc<Self>, port: u16, sock: TcpStream) -> io::Result<u32> {
        let id = self.next.fetch_add(1, Ordering::Relaxed).max(1);
        let _ = sock.set_nodelay(true);
        let st = self.add(id).ok_or_else(|| {
            io::Error::other(format!("{MAX_STREAMS} forwarded connections open already"))
        })?;
        let _ = st.sock.set(sock);
        if let Err(e) = self.send(Kind::Open, id, &port.to_be_bytes()) {
            self.kill(id, false);
            return Err(e);
        }
        self.start(&st);
        Ok(id)
    }

    fn start(self: &Arc<Self>, st: &Arc<Stream>) {
        let (m, s) = (self.clone(), st.clone());
        let up = std::thread::Builder::new()
            .name(format!("tunnel-up-{}", st.id))
            .spawn(move || m.uplink(&s));
        let (m, s) = (self.clone(), st.clone());
        let down = std::thread::Builder::new()
            .name(format!("tunnel-down-{}", st.id))
            .spawn(move || m.downlink(&s));
        if up.is_err() || down.is_err() {
            self.kill(st.id, true);
        }
    }

    /// Drop stream `id`, telling the peer if `tell`.
    fn kill(&self, id: u32, tell: bool) {
        let st = lock(&self.streams).remove(&id);
        if let Some(st) = st {
            st.dead.store(true, Ordering::SeqCst);
            if let Some(s) = st.sock.get() {
                let _ = s.shutdown(Shutdown::Both);
            }
            st.queue.close();
            st.cv.notify_all();
        }
        if tell {
            let _ = self.send(Kind::Reset, id, &[]);
        }
    }

    /// Drop every stream (a session ended or a new one began).
    pub fn reset_all(&self) {
        let ids: Vec<u32> = lock(&self.streams).keys().copied().collect();
        for id in ids {
            self.kill(id, false);
        }
    }

    fn pump_done(&self, st: &Stream) {
        if st.pumps.fetch_sub(1, Ordering::SeqCst) == 1 {
            lock(&self.streams).remove(&st.id);
        }
    }

    /// socket → channel, within the credit the peer gave.
    fn uplink(&self, st: &Stream) {
        let Some(sock) = st.sock.get() else {
            return self.pump_done(st);
        };
        let mut buf = vec![0u8; MAX_DATA];
        loop {
            let allowed = {
                let mut c = lock(&st.credit);
                while *c == 0 && !st.dead.load(Ordering::SeqCst) {
                    c = st.cv.wait(c).unwrap_or_else(PoisonError::into_inner);
                }
                (*c).min(MAX_DATA as u64) as usize
            };
            if st.dead.load(Ordering::SeqCst) {
                break;
            }
            match (&*sock).read(&mut buf[..allowed]) {
                Ok(0) => {
                    if !st.dead.load(Ordering::SeqCst) && self.send(Kind::Eof, st.id, &[]).is_err()
                    {
                        self.kill(st.id, false);
                    }
                    break;
                }
                Ok(n) => {
                    *lock(&st.credit) -= n as u64;
                    if self.send(Kind::Data, st.id, &buf[..n]).is_err() {
                        self.kill(st.id, false);
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    let tell = !st.dead.load(Ordering::SeqCst);
                    self.kill(st.id, tell);
                    break;
                }
            }
        }
        self.pump_done(st);
    }

    /// channel → socket, returning credit for what was written.
    fn downlink(&self, st: &Stream) {
        let Some(sock) = st.sock.get() else {
            return self.pump_done(st);
        };
        while let Some(chunk) = st.queue.pop() {
            let wrote = {
                let _w = lock(&st.writing);
                match &chunk {
                    Chunk::Data(v) => (&*sock).write_all(v),
                    Chunk::Eof => sock.shutdown(Shutdown::Write),
                    Chunk::Credit => Ok(()),
                }
            };
            st.pending.fetch_sub(1, Ordering::SeqCst);
            match chunk {
                Chunk::Data(v) => {
                    if wrote.is_err() {
                        let tell = !st.dead.load(Ordering::SeqCst);
                        self.kill(st.id, tell);
                        break;
                    }
                    st.queued.fetch_sub(v.len() as u64, Ordering::SeqCst);
                    if self
                        .send(Kind::Credit, st.id, &(v.len() as u32).to_be_bytes())
                        .is_err()
                    {
                        self.kill(st.id, false);
                        break;
                    }
                }
                Chunk::Eof => {
                    st.queue.close(); // the peer sends nothing after it
                    break;
                }
                Chunk::Credit => {
                    let n = st.owed.swap(0, Ordering::SeqCst) as u32;
                    if self.send(Kind::Credit, st.id, &n.to_be_bytes()).is_err() {
                        self.kill(st.id, false);
                        break;
                    }
                }
            }
        }
        self.pump_done(st);
    }

    /// Queue a chunk for the stream's downlink thread.
    fn hand_on(&self, st: &Stream, chunk: Chunk) {
        // Counted before it can be taken, so the count never goes below.
        st.pending.fetch_add(1, Ordering::SeqCst);
        if !st.queue.push(chunk) {
            st.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Write what the socket takes at once when nothing waits before it,
    /// saving a thread wake-up per chunk (under TCG the larger part of a
    /// small request's round trip). The rest, if any, is returned.
    fn write_now(&self, st: &Stream, data: Vec<u8>) -> Option<Vec<u8>> {
        use nix::sys::socket::{send, MsgFlags};
        use std::os::fd::AsRawFd;
        let Some(sock) = st.sock.get() else {
            return Some(data); // still dialling
        };
        let Ok(w) = st.writing.try_lock() else {
            return Some(data);
        };
        if st.pending.load(Ordering::SeqCst) != 0 {
            return Some(data);
        }
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        let n = match send(sock.as_raw_fd(), &data, flags) {
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => 0,
            Err(_) => {
                drop(w);
                self.kill(st.id, true);
                return None;
            }
        };
        drop(w);
        // The reader must never block on the channel (the peer's reader
        // may be blocked writing to us): the downlink thread returns the
        // credit, once a quarter window is owed.
        st.queued.fetch_sub(n as u64, Ordering::SeqCst);
        let owed = st.owed.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        if owed >= u64::from(WINDOW / 4) {
            self.hand_on(st, Chunk::Credit);
        }
        (n < data.len()).then(|| data[n..].to_vec())
    }

    /// Guest side: a stream for guest port `port`, dialled off the reader
    /// thread; bytes that arrive meanwhile wait in its queue.
    fn answer(self: &Arc<Self>, id: u32, port: u16) {
        if lock(&self.streams).contains_key(&id) {
            return;
        }
        let Some(st) = self.add(id) else {
            return self.kill(id, true); // as many as a side keeps
        };
        let m = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("tunnel-dial-{id}"))
            .spawn(move || {
                let dialled = match &m.dial {
                    Some(d) => d(port),
                    None => Err(io::ErrorKind::Unsupported.into()),
                };
                match dialled {
                    Ok(sock) if !st.dead.load(Ordering::SeqCst) => {
                        let _ = sock.set_nodelay(true);
                        let _ = st.sock.set(sock);
                        m.start(&st);
                    }
                    Ok(sock) => drop(sock),
                    Err(e) => {
                        log::debug!("tunnel: stream {id}: guest port {port}: {e}");
                        m.kill(id, true);
                    }
                }
            });
        if spawned.is_err() {
            self.kill(id, true);
        }
    }

    fn dispatch(self: &Arc<Self>, f: Frame) {
        let st = lock(&self.streams).get(&f.stream).cloned();
        match f.kind {
            Kind::Hello if self.dial.is_some() => self.reset_all(),
            Kind::Open if self.dial.is_some() => {
                if let Some(port) = f.number() {
                    self.answer(f.stream, port as u16);
                }
            }
            Kind::Hello | Kind::Open => {} // the guest never opens
            Kind::Data => {
                let Some(st) = st else { return };
                if f.data.is_empty() {
                    return; // nothing to write, nothing to queue
                }
                let queued = st.queued.fetch_add(f.data.len() as u64, Ordering::SeqCst);
                if queued + f.data.len() as u64 > u64::from(WINDOW) {
                    log::warn!("tunnel: stream {}: peer sent beyond its credit", f.stream);
                    return self.kill(f.stream, true);
                }
                let Some(rest) = self.write_now(&st, f.data) else {
                    return;
                };
                self.hand_on(&st, Chunk::Data(rest));
            }
            Kind::Eof => {
                if let Some(st) = st {
                    self.hand_on(&st, Chunk::Eof);
                }
            }
            Kind::Credit => {
                if let (Some(st), Some(n)) = (st, f.number()) {
                    *lock(&st.credit) += u64::from(n);
                    st.cv.notify_all();
                }
            }
            Kind::Reset => self.kill(f.stream, false),
        }
    }

    /// Read one session's frames until the channel ends; every stream of
    /// the session is dropped then. An unreadable frame is an error.
    pub fn serve(self: &Arc<Self>, r: &mut impl Read) -> io::Result<()> {
        let end = loop {
            match wire::read_frame(r) {
                Ok(Some(f)) => self.dispatch(f),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.reset_all();
        end
    }

    /// Chunks waiting for stream `id`'s downlink thread.
    #[cfg(test)]
    fn waiting(&self, id: u32) -> usize {
        lock(&self.streams).get(&id).map_or(0, |s| s.queue.len())
    }
}

#[cfg(test)]
#[path = "mux_tests.rs"]
mod tests;
