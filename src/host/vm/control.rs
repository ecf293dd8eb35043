//! The host end of [`crate::wire::control`]: connect to the machine's
//! control port (a socket QEMU serves) and ask the guest one thing at a
//! time.

use crate::host::store::Machine;
use crate::wire::control::{Op, Reply, Request, MAX_LINE};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

pub struct Control {
    r: BufReader<UnixStream>,
    w: UnixStream,
    next_id: u64,
}

impl Control {
    pub fn connect(m: &Machine) -> io::Result<Control> {
        let path = m.control_channel();
        let s = UnixStream::connect(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        // Ids from the clock: a reply left over from an earlier
        // connection never matches.
        let next_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Ok(Control {
            w: s.try_clone()?,
            r: BufReader::new(s),
            next_id,
        })
    }

    /// Send `op` and wait up to `timeout` for the guest's answer.
    pub fn ask(&mut self, op: Op, timeout: Duration) -> io::Result<Reply> {
        self.next_id += 1;
        let req = Request {
            id: self.next_id,
            op,
        };
        self.w.set_write_timeout(Some(timeout))?;
        self.w.write_all(req.line().as_bytes())?;
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the guest did not answer in {} s", timeout.as_secs()),
                ));
            }
            self.r.get_ref().set_read_timeout(Some(left))?;
            let mut line = String::new();
            match (&mut self.r).take(MAX_LINE as u64 + 1).read_line(&mut line) {
                Ok(0) => return Err(io::Error::other("the control port closed")),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            }
            if let Some(r) = Reply::parse(&line).filter(|r| r.id == req.id) {
                return Ok(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::store::sample;

    #[test]
    fn a_reply_is_matched_by_its_id_and_noise_is_skipped() {
        let t = tempfile::tempdir().unwrap();
        let m = sample(t.path());
        let l = std::os::unix::net::UnixListener::bind(m.control_channel()).unwrap();
        let guest = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let req = Request::parse(&line).unwrap();
            let mut w = s;
            let stale = Reply {
                id: req.id - 1,
                error: Some("old".into()),
                ..Default::default()
            };
            w.write_all(b"\0\0garbage\n").unwrap();
            w.write_all(stale.line().as_bytes()).unwrap();
            let ok = Reply {
                id: req.id,
                done: vec!["synced".into()],
                ..Default::default()
            };
            w.write_all(ok.line().as_bytes()).unwrap();
            req.op
        });
        let mut c = Control::connect(&m).unwrap();
        let r = c.ask(Op::Suspend, Duration::from_secs(5)).unwrap();
        assert_eq!(r.error, None);
        assert_eq!(r.done, ["synced"]);
        assert_eq!(guest.join().unwrap(), Op::Suspend);
    }

    #[test]
    fn a_silent_guest_times_out() {
        let t = tempfile::tempdir().unwrap();
        let m = sample(t.path());
        let _l = std::os::unix::net::UnixListener::bind(m.control_channel()).unwrap();
        let mut c = Control::connect(&m).unwrap();
        let e = c.ask(Op::Suspend, Duration::from_millis(300)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("did not answer"), "{e}");
    }
}
