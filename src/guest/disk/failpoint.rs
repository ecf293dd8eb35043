//! Named crash points in the format sequence, for the power-cut tests.
//!
//! When `B2D_FAILPOINT` names a point, the process kills itself with
//! SIGKILL there — the closest a test on a live kernel gets to pulling the
//! plug (no destructors, no flush beyond what was already fsynced). Unset,
//! it costs one environment lookup per point.

/// The points, in the order the format sequence passes them.
pub const POINTS: &[&str] = &["journal", "gpt", "mkfs", "populate", "mkswap", "commit"];

pub fn hit(name: &str) {
    if std::env::var("B2D_FAILPOINT").as_deref() == Ok(name) {
        log::warn!("failpoint {name}: killing myself with SIGKILL");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        // SIGKILL cannot be caught; never continue past a failpoint.
        std::process::abort();
    }
}
