//! Named crash points in the format sequence, for the power-cut tests of
//! `b2d-init prepare-disk` on loop devices (`tests/prepare_disk_loop.rs`).
//!
//! When the point armed by `prepare-disk --failpoint NAME` is reached,
//! the process kills itself with SIGKILL there — the closest a test on a
//! live kernel gets to pulling the plug (no destructors, no flush beyond
//! what was already fsynced).
//!
//! Only that subcommand's own argument arms one, and PID 1 never runs the
//! subcommand: a boot calls the format with no failpoint, and nothing
//! reads one from the environment or the kernel command line (the kernel
//! hands PID 1 each unknown `KEY=VALUE` word of its command line as an
//! environment variable, so the `B2D_FAILPOINT` variable read before was
//! within reach of anyone who could edit the boot line). Why not compile
//! the points out of the production binary instead: the loop-device test
//! drives the `b2d-init` Cargo builds for the test run, which a feature
//! would not reach without a second build of it, and
//! `cfg(debug_assertions)` would tie a safety property to the build
//! profile. The fault suite in real VMs (`make torture`) needs no
//! failpoint at all: it cuts QEMU's power a set time after a console line.

/// A point of the format sequence, in the order the sequence passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// The journal (the archive's copy) is written.
    Journal,
    /// The GPT is written and the kernel knows the partitions.
    Gpt,
    /// The data filesystem is made (still with the formatting label).
    Mkfs,
    /// The userdata is stored on it.
    Populate,
    /// The swap partition is made.
    Mkswap,
    /// The data filesystem is relabelled: the format has committed.
    Commit,
}

/// Every point, in order.
pub const POINTS: &[Failpoint] = &[
    Failpoint::Journal,
    Failpoint::Gpt,
    Failpoint::Mkfs,
    Failpoint::Populate,
    Failpoint::Mkswap,
    Failpoint::Commit,
];

#[derive(Debug, thiserror::Error)]
#[error("no failpoint \"{}\" (the points are: {})", .0.escape_debug(), names())]
pub struct UnknownFailpoint(pub String);

/// The points' names, in order, for a refusal.
fn names() -> String {
    POINTS
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Failpoint {
    pub fn name(self) -> &'static str {
        match self {
            Failpoint::Journal => "journal",
            Failpoint::Gpt => "gpt",
            Failpoint::Mkfs => "mkfs",
            Failpoint::Populate => "populate",
            Failpoint::Mkswap => "mkswap",
            Failpoint::Commit => "commit",
        }
    }

    pub fn parse(name: &str) -> Result<Failpoint, UnknownFailpoint> {
        POINTS
            .iter()
            .copied()
            .find(|p| p.name() == name)
            .ok_or_else(|| UnknownFailpoint(name.into()))
    }
}

/// The sequence reached `here`: die there if it is the `armed` point.
pub fn hit(armed: Option<Failpoint>, here: Failpoint) {
    if armed == Some(here) {
        let name = here.name();
        log::warn!("failpoint {name}: killing myself with SIGKILL");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        // SIGKILL cannot be caught; never continue past a failpoint.
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_read_by_name_and_a_wrong_one_lists_them() {
        for p in POINTS {
            assert_eq!(Failpoint::parse(p.name()).unwrap(), *p);
        }
        let e = Failpoint::parse("mkfs2").unwrap_err().to_string();
        assert_eq!(
            e,
            "no failpoint \"mkfs2\" (the points are: journal, gpt, mkfs, populate, mkswap, commit)"
        );
        // Not armed, or armed elsewhere: nothing happens.
        hit(None, Failpoint::Gpt);
        hit(Some(Failpoint::Commit), Failpoint::Gpt);
    }
}
