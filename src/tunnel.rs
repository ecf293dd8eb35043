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

use crate::wire::tunnel::{self as wire, Frame, Kind, MAX_DATA, WINDOW};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

/// How the guest side reaches guest port P.
pub type Dialer = Box<dyn Fn(u16) -> io::Result<TcpStream> + Send + Sync>;

type Out = Box<dyn Write + Send>;

enum Chunk {
    Data(Vec<u8>),
    Eof,
    /// Return the credit the reader owes for bytes it wrote itself.
    Credit,
}

struct Stream {
    id: u32,
    sock: OnceLock<TcpStream>,
    /// Bytes this side may still send.
    credit: Mutex<u64>,
    cv: Condvar,
    tx: Mutex<Option<Sender<Chunk>>>,
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
    fn new(id: u32) -> (Arc<Stream>, Receiver<Chunk>) {
        let (tx, rx) = channel();
        let st = Stream {
            id,
            sock: OnceLock::new(),
            credit: Mutex::new(u64::from(WINDOW)),
            cv: Condvar::new(),
            tx: Mutex::new(Some(tx)),
            queued: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            owed: AtomicU64::new(0),
            writing: Mutex::new(()),
            dead: AtomicBool::new(false),
            pumps: AtomicU8::new(2),
        };
        (Arc::new(st), rx)
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

    fn send(&self, kind: Kind, id: u32, data: &[u8]) -> io::Result<()> {
        let mut out = lock(&self.out);
        let w = out.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        w.write_all(&wire::encode(kind, id, data))?;
        w.flush()
    }

    /// Start a host session: the guest drops what it had.
    pub fn hello(&self) -> io::Result<()> {
        self.send(Kind::Hello, 0, &[])
    }

    /// Host side: carry `sock`, accepted for guest port `port`.
    pub fn open(self: &Arc<Self>, port: u16, sock: TcpStream) -> io::Result<u32> {
        let id = self.next.fetch_add(1, Ordering::Relaxed).max(1);
        let _ = sock.set_nodelay(true);
        let (st, rx) = Stream::new(id);
        let _ = st.sock.set(sock);
        lock(&self.streams).insert(id, st.clone());
        if let Err(e) = self.send(Kind::Open, id, &port.to_be_bytes()) {
            self.kill(id, false);
            return Err(e);
        }
        self.start(&st, rx);
        Ok(id)
    }

    fn start(self: &Arc<Self>, st: &Arc<Stream>, rx: Receiver<Chunk>) {
        let (m, s) = (self.clone(), st.clone());
        let up = std::thread::Builder::new()
            .name(format!("tunnel-up-{}", st.id))
            .spawn(move || m.uplink(&s));
        let (m, s) = (self.clone(), st.clone());
        let down = std::thread::Builder::new()
            .name(format!("tunnel-down-{}", st.id))
            .spawn(move || m.downlink(&s, rx));
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
            lock(&st.tx).take();
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
    fn downlink(&self, st: &Stream, rx: Receiver<Chunk>) {
        let Some(sock) = st.sock.get() else {
            return self.pump_done(st);
        };
        while let Ok(chunk) = rx.recv() {
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
                Chunk::Eof => break,
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
        let tx = lock(&st.tx).clone();
        if let Some(tx) = tx {
            st.pending.fetch_add(1, Ordering::SeqCst);
            if tx.send(chunk).is_err() {
                st.pending.fetch_sub(1, Ordering::SeqCst);
            }
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
        let (st, rx) = Stream::new(id);
        lock(&self.streams).insert(id, st.clone());
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
                        m.start(&st, rx);
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
}

#[cfg(test)]
#[path = "tunnel_tests.rs"]
mod tests;
