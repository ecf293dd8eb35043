//! A small QMP client: connect to a QEMU monitor socket, leave
//! capabilities negotiation, run commands and read their answers, skipping
//! the asynchronous events QEMU interleaves. Only the host talks QMP; the
//! guest never gets a channel to it (QMP can run programs on the host).

use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

pub struct Qmp {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

impl Qmp {
    /// Connect to `sock` and enter command mode.
    pub fn connect(sock: &Path, timeout: Duration) -> io::Result<Qmp> {
        let s = UnixStream::connect(sock)
            .map_err(|e| io::Error::new(e.kind(), format!("QMP {}: {e}", sock.display())))?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        let mut q = Qmp {
            w: s.try_clone()?,
            r: BufReader::new(s),
        };
        let greeting = q.read()?;
        if greeting.get("QMP").is_none() {
            return Err(other(format!("QMP {}: no greeting", sock.display())));
        }
        q.execute("qmp_capabilities", None)?;
        Ok(q)
    }

    fn read(&mut self) -> io::Result<Value> {
        let mut line = String::new();
        if self.r.read_line(&mut line)? == 0 {
            return Err(other("QMP closed the connection".into()));
        }
        serde_json::from_str(&line).map_err(|e| other(format!("QMP sent {:?}: {e}", line.trim())))
    }

    /// Run `cmd` with `args`; its `return` value, or its error as text.
    pub fn execute(&mut self, cmd: &str, args: Option<Value>) -> io::Result<Value> {
        let mut req = json!({ "execute": cmd });
        if let Some(a) = args {
            req["arguments"] = a;
        }
        writeln!(self.w, "{req}")?;
        loop {
            let v = self.read()?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                let desc = e.get("desc").and_then(Value::as_str).unwrap_or("error");
                return Err(other(format!("QMP {cmd}: {desc}")));
            }
            // An event ({"event": …}): not ours, read on.
        }
    }

    /// A human-monitor command (`hostfwd_add` exists only there); what it
    /// printed, which is empty on success for most commands.
    pub fn hmp(&mut self, line: &str) -> io::Result<String> {
        let r = self.execute(
            "human-monitor-command",
            Some(json!({ "command-line": line })),
        )?;
        Ok(r.as_str().unwrap_or_default().trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    /// A scripted QMP server: greets, then answers each request line with
    /// the next canned reply lines.
    fn server(
        sock: &Path,
        replies: Vec<Vec<&'static str>>,
    ) -> std::thread::JoinHandle<Vec<String>> {
        let l = UnixListener::bind(sock).unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            c.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
                .unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut got = Vec::new();
            for reply in replies {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                got.push(line.trim().to_string());
                for l in reply {
                    c.write_all(l.as_bytes()).unwrap();
                    c.write_all(b"\r\n").unwrap();
                }
            }
            let mut rest = String::new();
            let _ = r.read_to_string(&mut rest);
            got
        })
    }

    #[test]
    fn commands_events_and_errors() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("qmp.sock");
        let t = server(
            &sock,
            vec![
                vec!["{\"return\": {}}"],
                vec![
                    "{\"event\": \"NIC_RX_FILTER_CHANGED\", \"data\": {}}",
                    "{\"return\": \"\"}",
                ],
                vec!["{\"return\": \"Could not set up host forwarding rule 'tcp:127.0.0.1:80-:80'\\r\\n\"}"],
                vec!["{\"error\": {\"class\": \"GenericError\", \"desc\": \"no such netdev\"}}"],
            ],
        );
        let mut q = Qmp::connect(&sock, Duration::from_secs(5)).unwrap();
        assert_eq!(
            q.hmp("hostfwd_add n0 tcp:127.0.0.1:8080-:8080").unwrap(),
            ""
        );
        assert!(q
            .hmp("hostfwd_add n0 tcp:127.0.0.1:80-:80")
            .unwrap()
            .starts_with("Could not set up"));
        let e = q.execute("netdev_del", None).unwrap_err().to_string();
        assert_eq!(e, "QMP netdev_del: no such netdev");
        drop(q);
        let got = t.join().unwrap();
        assert_eq!(got[0], "{\"execute\":\"qmp_capabilities\"}");
        assert_eq!(
            got[1],
            "{\"arguments\":{\"command-line\":\"hostfwd_add n0 tcp:127.0.0.1:8080-:8080\"},\"execute\":\"human-monitor-command\"}"
        );
    }
}
