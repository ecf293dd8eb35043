//! b2d: a boot2docker-like Docker host.
//!
//! - [`disk`]: the on-disk contract shared by the guest agent and the host
//!   companion (magic, userdata archive, probing, sparse image writers).
//! - `guest`: the PID 1 agent logic (`b2d-init`).
//! - `host`: the host companion logic (`b2d`).
//! - [`wire`]: the run-time contract between them (ready line, console
//!   log lines).
//! - [`mux`]: the TCP stream multiplexer both agents run over the
//!   tunnel channel (forwarded ports).
//! - [`sys`]: the one seam to the kernel, and [`sys::run_tool`], the one
//!   way to run an external program.
//! - [`errors`]: the one "I/O error with a path", [`errors::PathError`].
//!
//! A panic in PID 1 is a kernel panic, so the whole library denies
//! `unwrap`/`expect` outside tests, the host side as well: a failure is
//! an error that names what failed, never a panic.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod atomic;
pub mod disk;
pub mod errors;
#[doc(hidden)]
pub mod fuzzing;
pub mod guest;
pub mod host;
pub mod mux;
pub mod small_file;
pub mod sys;
pub mod tls;
pub mod util;
pub mod wire;

/// An error and its causes as one line, `outer: cause: root`, skipping a
/// cause whose text the message before it already carries.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

/// Test helper: a line meant for people carries no Rust `Debug` output
/// (`Some(…)`, `None`, struct or list dumps).
#[cfg(test)]
pub(crate) fn assert_readable(line: &str) {
    for dump in ["Some(", "None", "{ ", " }", "[\"", "Ok(", "Err("] {
        assert!(
            !line.contains(dump),
            "Debug output ({dump}) in a line for people: {line}"
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_chain_skips_repeated_causes() {
        let io = std::io::Error::other("disk full");
        let e = anyhow::Error::new(io).context("writing /tmp/x");
        assert_eq!(super::error_chain(e.as_ref()), "writing /tmp/x: disk full");
        let inner = std::io::Error::other("gone");
        #[derive(Debug, thiserror::Error)]
        #[error("/dev/sda: {0}")]
        struct Wrap(#[source] std::io::Error);
        assert_eq!(super::error_chain(&Wrap(inner)), "/dev/sda: gone");
    }
}
