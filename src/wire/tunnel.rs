//! The forwarded-TCP channel: many TCP connections multiplexed over one
//! virtio-serial port ([`CHANNEL`]), in the manner of Lima's port
//! tunnel. The host agent accepts on 127.0.0.1:P and opens a stream; the
//! guest agent connects to the guest's listener on P and pumps bytes.
//!
//! A frame is a 9-byte header, `kind:u8 stream:u32be len:u32be`, then
//! `len` bytes. Each side may have at most [`WINDOW`] bytes of a stream
//! unacknowledged at the peer; the peer returns credit as it writes the
//! bytes out, so one slow connection never stalls the channel.
//!
//! Only the host opens streams: the guest can answer a stream, never ask
//! the host to connect anywhere.

use std::io::{self, Read};

/// The virtio-serial port name.
pub const CHANNEL: &str = "org.b2d.tunnel.0";

/// Largest payload of one DATA frame. Large on purpose: under TCG each
/// read and write costs far more than the bytes it moves (reading a
/// guest socket 1 MiB at a time pumped 2.5x what 64 KiB reads did).
pub const MAX_DATA: usize = 1 << 20;

/// Bytes of one stream a side may have in flight (sent, not yet credited).
pub const WINDOW: u32 = 4 << 20;

/// Streams a side keeps at once; it refuses more (the host closes the
/// connection it accepted, the guest resets the stream). With
/// [`WINDOW`], this bounds what a peer can make a side hold, and the
/// threads it runs (two a stream), while leaving room for a load test
/// of several hundred connections through one port.
pub const MAX_STREAMS: usize = 1024;

pub const HEADER: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// host → guest, stream 0: a new host session; the guest drops every
    /// stream of the session before.
    Hello = 1,
    /// host → guest: connect to guest port (payload `port:u16be`).
    Open = 2,
    Data = 3,
    /// No more bytes in this direction (a TCP half-close).
    Eof = 4,
    /// The stream is gone (connect failed, reset, protocol breach).
    Reset = 5,
    /// The peer wrote out `n:u32be` more bytes: send that many more.
    Credit = 6,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Open,
            3 => Kind::Data,
            4 => Kind::Eof,
            5 => Kind::Reset,
            6 => Kind::Credit,
            _ => return None,
        })
    }

    /// Longest payload a frame of this kind may carry.
    fn max_len(self) -> usize {
        match self {
            Kind::Data => MAX_DATA,
            Kind::Open => 2,
            Kind::Credit => 4,
            Kind::Hello | Kind::Eof | Kind::Reset => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub stream: u32,
    pub data: Vec<u8>,
}

impl Frame {
    pub fn new(kind: Kind, stream: u32, data: &[u8]) -> Frame {
        Frame {
            kind,
            stream,
            data: data.to_vec(),
        }
    }

    pub fn open(stream: u32, port: u16) -> Frame {
        Frame::new(Kind::Open, stream, &port.to_be_bytes())
    }

    pub fn credit(stream: u32, n: u32) -> Frame {
        Frame::new(Kind::Credit, stream, &n.to_be_bytes())
    }

    /// Header and payload as one buffer (one write on the channel).
    pub fn encode(&self) -> Vec<u8> {
        encode(self.kind, self.stream, &self.data)
    }

    /// The port of an OPEN, the count of a CREDIT.
    pub fn number(&self) -> Option<u32> {
        match self.data.len() {
            2 => Some(u32::from(u16::from_be_bytes([self.data[0], self.data[1]]))),
            4 => Some(u32::from_be_bytes([
                self.data[0],
                self.data[1],
                self.data[2],
                self.data[3],
            ])),
            _ => None,
        }
    }
}

pub fn encode(kind: Kind, stream: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + data.len());
    v.push(kind as u8);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// The next frame; Ok(None) at a clean end of the channel. A frame of an
/// unknown kind or an oversized one is an InvalidData error: the channel
/// is out of step and its session must end.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut h = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match r.read(&mut h[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let kind = Kind::from_u8(h[0]).ok_or_else(|| bad(format!("unknown frame kind {}", h[0])))?;
    let stream = u32::from_be_bytes([h[1], h[2], h[3], h[4]]);
    let len = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) as usize;
    if len > kind.max_len() {
        return Err(bad(format!("{kind:?} frame of {len} bytes")));
    }
    let mut data = vec![0u8; len];
    r.read_exact(&mut data)?;
    Ok(Some(Frame { kind, stream, data }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn frames_round_trip_back_to_back() {
        let frames = [
            Frame::new(Kind::Hello, 0, &[]),
            Frame::open(7, 18080),
            Frame::new(Kind::Data, 7, &[5u8; MAX_DATA]),
            Frame::credit(7, 65536),
            Frame::new(Kind::Eof, 7, &[]),
            Frame::new(Kind::Reset, 9, &[]),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(|f| f.encode()).collect();
        let mut r = Cursor::new(bytes);
        for f in &frames {
            assert_eq!(read_frame(&mut r).unwrap().as_ref(), Some(f));
        }
        assert_eq!(read_frame(&mut r).unwrap(), None);
        assert_eq!(Frame::open(1, 443).number(), Some(443));
        assert_eq!(Frame::credit(1, 70000).number(), Some(70000));
    }

    #[test]
    fn unknown_oversized_and_torn_frames_are_errors() {
        let unknown = encode(Kind::Data, 1, b"x");
        let mut u = unknown.clone();
        u[0] = 99;
        let e = read_frame(&mut Cursor::new(u)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("kind 99"), "{e}");

        let mut big = encode(Kind::Credit, 1, &[0; 4]);
        big[8] = 5; // a 5-byte CREDIT
        let e = read_frame(&mut Cursor::new(big)).unwrap_err();
        assert!(e.to_string().contains("Credit frame of 5 bytes"), "{e}");

        let mut huge = encode(Kind::Data, 1, &[]);
        huge[5..9].copy_from_slice(&((MAX_DATA as u32) + 1).to_be_bytes());
        assert!(read_frame(&mut Cursor::new(huge)).is_err());

        let torn = &unknown[..unknown.len() - 1];
        assert!(read_frame(&mut Cursor::new(torn.to_vec())).is_err());
        assert!(read_frame(&mut Cursor::new(unknown[..4].to_vec())).is_err());
    }
}
