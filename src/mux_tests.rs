use super::*;
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A guest Mux that dials 127.0.0.1 (the test's "guest" servers).
fn guest() -> Arc<Mux> {
    Mux::new(
        Some(Box::new(|port| TcpStream::connect(("127.0.0.1", port)))),
        0,
    )
}

/// Host and guest muxes joined by a socket pair, both serving.
fn pair() -> (Arc<Mux>, Arc<Mux>) {
    let (a, b) = UnixStream::pair().unwrap();
    let host = Mux::new(None, 1000);
    let g = guest();
    host.connect(Box::new(a.try_clone().unwrap()));
    g.connect(Box::new(b.try_clone().unwrap()));
    let (h2, g2) = (host.clone(), g.clone());
    std::thread::spawn(move || h2.serve(&mut { a }));
    std::thread::spawn(move || g2.serve(&mut { b }));
    (host, g)
}

/// A client connected to a host-side listener, and the accepted socket
/// the host agent would hand to [`Mux::open`].
fn client() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    (c, l.accept().unwrap().0)
}

/// A "guest" server: echoes each connection, half-closing after EOF.
fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let s = s.unwrap();
            std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let mut w = s;
                std::io::copy(&mut r, &mut w).unwrap();
                w.shutdown(Shutdown::Write).unwrap();
            });
        }
    });
    port
}

/// A "guest" server that accepts one connection and never reads it.
fn stalled_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let s = l.accept().unwrap().0;
        std::thread::sleep(Duration::from_secs(30));
        drop(s);
    });
    port
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Send `data` through a stream to the echo server and read it back.
fn round_trip(host: &Arc<Mux>, port: u16, data: Vec<u8>) -> Vec<u8> {
    let (mut c, accepted) = client();
    host.open(port, accepted).unwrap();
    let mut w = c.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        w.write_all(&data).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    back
}

#[test]
fn bytes_cross_both_ways_with_half_close_and_streams_end() {
    let (host, g) = pair();
    let port = echo_server();
    // Far beyond one window each way: credit must flow back.
    let data = pattern(2 * WINDOW as usize + 12345);
    assert_eq!(round_trip(&host, port, data.clone()), data);
    // An empty stream: EOF alone crosses.
    assert_eq!(round_trip(&host, port, Vec::new()), Vec::<u8>::new());
    until("both sides drop finished streams", || {
        host.streams() == 0 && g.streams() == 0
    });
}

#[test]
fn a_port_nobody_listens_on_closes_the_host_connection() {
    let (host, g) = pair();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (mut c, accepted) = client();
    host.open(port, accepted).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    // Ends (EOF or reset), does not hang.
    let n = c.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0);
    until("the failed stream is gone", || {
        host.streams() == 0 && g.streams() == 0
    });
}

#[test]
fn a_stalled_connection_does_not_stall_another() {
    let (host, _g) = pair();
    let stall_port = stalled_server();
    let (c1, accepted) = client();
    host.open(stall_port, accepted).unwrap();
    let mut w = c1.try_clone().unwrap();
    std::thread::spawn(move || {
        let _ = w.write_all(&vec![1u8; 64 << 20]);
    });
    std::thread::sleep(Duration::from_millis(300));
    let port = echo_server();
    let data = pattern(3 * WINDOW as usize);
    assert_eq!(round_trip(&host, port, data.clone()), data);
    drop(c1);
}

/// Frames of a raw peer posing as the host, answered by a guest mux.
fn raw_guest() -> (UnixStream, Arc<Mux>) {
    let (a, b) = UnixStream::pair().unwrap();
    let g = guest();
    g.connect(Box::new(b.try_clone().unwrap()));
    let g2 = g.clone();
    std::thread::spawn(move || g2.serve(&mut { b }));
    (a, g)
}

fn next_kind(r: &mut UnixStream, want: Kind, stream: u32) -> Frame {
    r.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    loop {
        let f = wire::read_frame(r).unwrap().expect("channel open");
        if f.kind == want && f.stream == stream {
            return f;
        }
    }
}

#[test]
fn a_peer_that_sends_beyond_its_credit_loses_the_stream() {
    let (mut raw, g) = raw_guest();
    let port = stalled_server();
    raw.write_all(&Frame::open(5, port).encode()).unwrap();
    let mut w = raw.try_clone().unwrap();
    std::thread::spawn(move || {
        // Never waits for credit: 64 MiB outruns the window and any socket buffer.
        for _ in 0..64 {
            if w.write_all(&wire::encode(Kind::Data, 5, &[7u8; MAX_DATA]))
                .is_err()
            {
                break;
            }
        }
    });
    next_kind(&mut raw, Kind::Reset, 5);
    until("the guest dropped the stream", || g.streams() == 0);
}

#[test]
fn a_new_host_session_drops_the_streams_of_the_one_before() {
    let (mut raw, g) = raw_guest();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    raw.write_all(&Frame::open(9, port).encode()).unwrap();
    let (mut served, _) = l.accept().unwrap();
    until("the stream is up", || g.streams() == 1);
    raw.write_all(&Frame::new(Kind::Hello, 0, &[]).encode())
        .unwrap();
    served
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        served.read(&mut buf).unwrap_or(0),
        0,
        "the guest-side connection ends"
    );
    until("no streams", || g.streams() == 0);
}

#[test]
fn the_host_side_never_dials_for_the_guest() {
    let (a, b) = UnixStream::pair().unwrap();
    let host = Mux::new(None, 1);
    host.connect(Box::new(a.try_clone().unwrap()));
    let h2 = host.clone();
    let served = std::thread::spawn(move || h2.serve(&mut { a }));
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let mut w = b.try_clone().unwrap();
    w.write_all(&Frame::open(3, port).encode()).unwrap();
    w.write_all(&Frame::new(Kind::Hello, 0, &[]).encode())
        .unwrap();
    drop(w);
    drop(b);
    served.join().unwrap().unwrap();
    assert_eq!(host.streams(), 0);
    assert!(l.accept().is_err(), "nothing connected");
}

#[test]
fn an_unreadable_frame_ends_the_session() {
    let (mut raw, g) = raw_guest();
    let port = echo_server();
    raw.write_all(&Frame::open(4, port).encode()).unwrap();
    until("the stream is up", || g.streams() == 1);
    raw.write_all(&[42u8; wire::HEADER]).unwrap();
    until("the session's streams are gone", || g.streams() == 0);
}

/// A host mux, and the channel's other end for a test posing as the guest.
fn raw_host() -> (UnixStream, Arc<Mux>) {
    let (a, b) = UnixStream::pair().unwrap();
    let host = Mux::new(None, 1000);
    host.connect(Box::new(a.try_clone().unwrap()));
    let h = host.clone();
    std::thread::spawn(move || h.serve(&mut { a }));
    (b, host)
}

#[test]
fn a_stalled_stream_holds_a_bounded_queue_whatever_the_peer_sends() {
    use nix::sys::socket::{setsockopt, sockopt};
    let (mut raw, host) = raw_host();
    // A client that never reads, with small buffers: the stream stalls at once.
    let (c, accepted) = client();
    setsockopt(&accepted, sockopt::SndBuf, &4096).unwrap();
    setsockopt(&c, sockopt::RcvBuf, &4096).unwrap();
    let id = host.open(9, accepted).unwrap();
    next_kind(&mut raw, Kind::Open, id);
    let (_c2, other) = client();
    let marker = host.open(10, other).unwrap();
    next_kind(&mut raw, Kind::Open, marker);
    // One big frame fills the socket; then a flood of one-byte and empty
    // frames, within the window.
    raw.write_all(&wire::encode(Kind::Data, id, &vec![1u8; MAX_DATA]))
        .unwrap();
    let mut flood = Vec::new();
    for _ in 0..200_000 {
        flood.extend(wire::encode(Kind::Data, id, &[2]));
        flood.extend(wire::encode(Kind::Data, id, &[]));
    }
    raw.write_all(&flood).unwrap();
    // Frames are read in order: once the marker stream is reset, the
    // host has taken every frame before it.
    raw.write_all(&Frame::new(Kind::Reset, marker, &[]).encode())
        .unwrap();
    until("the flood is read", || host.streams() == 1);
    let waiting = host.waiting(id);
    assert!(
        (1..=3).contains(&waiting),
        "{waiting} chunks wait for a stalled stream"
    );
    // Beyond the window the stream is reset and what it held dropped.
    let mut w = raw.try_clone().unwrap();
    std::thread::spawn(move || {
        for _ in 0..4 {
            let _ = w.write_all(&wire::encode(Kind::Data, id, &[3u8; MAX_DATA]));
        }
    });
    next_kind(&mut raw, Kind::Reset, id);
    until("the stream is gone", || host.streams() == 0);
    drop(c);
}

#[test]
fn a_stuck_channel_write_ends_the_session_in_bounded_time() {
    // The guest's end of the channel is never read.
    let (a, _guest_end) = UnixStream::pair().unwrap();
    a.set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let host = Mux::new(None, 1);
    host.connect(Box::new(a.try_clone().unwrap()));
    let h = host.clone();
    let served = std::thread::spawn(move || h.serve(&mut { a }));
    let (c, accepted) = client();
    host.open(7, accepted).unwrap();
    // The client sends far more than the channel buffers.
    let mut w = c.try_clone().unwrap();
    std::thread::spawn(move || {
        let _ = w.write_all(&vec![1u8; 64 << 20]);
    });
    let t0 = Instant::now();
    until("the session ends", || served.is_finished());
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    served.join().unwrap().unwrap();
    until("its streams are gone", || host.streams() == 0);
    // Until a new session, a connection is refused at once.
    let (_c2, accepted) = client();
    let t0 = Instant::now();
    assert_eq!(
        host.open(7, accepted).unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    assert!(t0.elapsed() < Duration::from_secs(1));
    drop(c);
}

#[test]
fn streams_beyond_the_cap_are_refused_on_both_sides() {
    let host = Mux::new(None, 1);
    for i in 0..MAX_STREAMS {
        assert!(host.add(i as u32 + 1).is_some());
    }
    assert!(host.add(5000).is_none());
    let (_c, accepted) = client();
    let e = host.open(80, accepted).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("{MAX_STREAMS} forwarded connections open already")
    );
    let (mut raw, g) = raw_guest();
    for i in 0..MAX_STREAMS {
        assert!(g.add(i as u32 + 1).is_some());
    }
    raw.write_all(&Frame::open(99_999, 80).encode()).unwrap();
    next_kind(&mut raw, Kind::Reset, 99_999);
    assert_eq!(g.streams(), MAX_STREAMS);
}
