//! Small helpers both sides use that belong to neither: a PATH lookup and
//! a TCP reachability check.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first file `name` in a PATH directory.
pub fn which(name: &Path) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether something accepts TCP connections at `addr` (`IP:PORT`).
pub fn tcp_open(addr: &str, timeout: Duration) -> bool {
    addr.parse()
        .ok()
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, timeout).is_ok())
}
