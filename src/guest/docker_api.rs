//! The agent's few questions to dockerd, over its unix socket: one
//! HTTP/1.0 `GET` (dockerd then answers without chunking and closes the
//! connection), read up to a bound. `/_ping` for the ready line, and
//! `/services` for swarm's published ports ([`super::ingress`]).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// dockerd's socket under `root`.
pub fn socket(root: &Path) -> std::path::PathBuf {
    root.join("var/run/docker.sock")
}

/// A response's status code and body; None for anything that is not
/// HTTP.
pub fn split_response(resp: &[u8]) -> Option<(u16, &[u8])> {
    let end = resp.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&resp[..end]).ok()?;
    let code = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((code, &resp[end + 4..]))
}

/// `GET path` on the socket `sock`: the status code and body, reading at
/// most `limit` bytes; None when dockerd cannot be reached or answers
/// with something else than HTTP.
pub fn get(sock: &Path, path: &str, timeout: Duration, limit: u64) -> Option<(u16, Vec<u8>)> {
    let mut s = UnixStream::connect(sock).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").as_bytes())
        .ok()?;
    let mut resp = Vec::new();
    let _ = s.take(limit).read_to_end(&mut resp);
    let (code, body) = split_response(&resp)?;
    Some((code, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_split_into_status_and_body() {
        assert_eq!(
            split_response(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nOK"),
            Some((200, &b"OK"[..]))
        );
        assert_eq!(
            split_response(b"HTTP/1.1 503 Service Unavailable\r\n\r\n{}"),
            Some((503, &b"{}"[..]))
        );
        for bad in [
            &b""[..],
            b"HTTP/1.0 200 OK\r\n",
            b"garbage\r\n\r\nx",
            b"HTTP/1.0 abc\r\n\r\n",
        ] {
            assert_eq!(split_response(bad), None);
        }
    }

    #[test]
    fn a_get_over_a_real_socket() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("docker.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 256];
            let n = c.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"GET /services HTTP/1.0\r\nHost: docker\r\n\r\n"));
            c.write_all(b"HTTP/1.0 200 OK\r\n\r\n[1,2,3]").unwrap();
        });
        let got = get(&sock, "/services", Duration::from_secs(5), 1 << 20);
        assert_eq!(got, Some((200, b"[1,2,3]".to_vec())));
        t.join().unwrap();
        assert_eq!(
            get(
                &d.path().join("none.sock"),
                "/x",
                Duration::from_secs(1),
                10
            ),
            None
        );
    }
}
