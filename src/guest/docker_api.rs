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
}
