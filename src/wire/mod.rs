//! The run-time contract between guest and host: what `b2d-init` prints
//! on the serial console and what `b2d` (and the QEMU test harness) read
//! back from it. Both sides use these types; neither parses by hand.
//!
//! - [`ready`]: the one machine-readable `b2d-ready {json}` line.
//! - [`console`]: the agent's log lines, `[   812ms] b2d-init INFO  text`.
//! - [`ports`]: the guest's listening ports, sent over virtio-serial to
//!   the host agent that forwards them.
//! - [`tunnel`]: the frames that carry forwarded TCP connections.
//! - [`control`]: the host's requests around a suspend, and the replies.
//! - [`guest_config`]: the per-boot config QEMU hands the guest.
//! - [`engine`]: the engine settings (daemon.json, dockerd's environment,
//!   CA certificates) in that config and in the userdata.
//! - [`network`]: the NIC on a private network between machines, in that
//!   config, and its peers.

pub mod console;
pub mod control;
pub mod engine;
pub mod guest_config;
pub mod network;
pub mod ports;
pub mod ready;
pub mod tunnel;
