//! A TCP byte pump for `bench/shares.rs`, built static (musl) so it runs
//! in the bench's busybox container: busybox nc moves 1 KiB a syscall,
//! which under TCG measures nc, not the network.
//!
//! `netblast send HOST:PORT BYTES`: connect, write BYTES, half-close, wait
//! for the peer to close; prints `sent BYTES SECONDS`.
//! `netblast recv PORT`: accept one connection on 0.0.0.0:PORT, read to
//! EOF; prints `got BYTES`.
//! `netblast serve PORT BYTES`: accept one connection, write BYTES, close.
//! Both print `listening` once they listen.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

const CHUNK: usize = 1 << 20;

fn pump_out(s: &mut TcpStream, bytes: u64) -> std::io::Result<()> {
    let buf = vec![0u8; CHUNK];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        s.write_all(&buf[..n])?;
        left -= n as u64;
    }
    s.shutdown(Shutdown::Write)
}

fn drain(s: &mut TcpStream) -> std::io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    loop {
        match s.read(&mut buf)? {
            0 => return Ok(got),
            n => got += n as u64,
        }
    }
}

fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let t0 = Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return Ok(s),
            Err(_) if t0.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(e),
        }
    }
}

fn listen(port: &str) -> std::io::Result<TcpStream> {
    let l = TcpListener::bind(format!("0.0.0.0:{port}"))?;
    println!("listening");
    std::io::stdout().flush()?;
    Ok(l.accept()?.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["send", addr, bytes] => {
            let bytes: u64 = bytes.parse()?;
            let mut s = connect(addr)?;
            let t0 = Instant::now();
            pump_out(&mut s, bytes)?;
            drain(&mut s)?; // the peer closes once it has read it all
            println!("sent {bytes} {:.3}", t0.elapsed().as_secs_f64());
        }
        ["recv", port] => {
            let mut s = listen(port)?;
            println!("got {}", drain(&mut s)?);
        }
        ["serve", port, bytes] => {
            let mut s = listen(port)?;
            pump_out(&mut s, bytes.parse()?)?;
        }
        _ => {
            return Err(
                "usage: netblast send HOST:PORT BYTES | recv PORT | serve PORT BYTES".into(),
            )
        }
    }
    Ok(())
}
