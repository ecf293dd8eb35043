//! The host companion (`b2d`), one folder per feature. Each room's
//! `mod.rs` says what it owns; ARCHITECTURE.md draws how they depend on
//! each other.
//!
//! - [`cmd`]: one thin module per verb.
//! - [`store`]: a machine's directory, every file name in it, its
//!   `config.json` and what it is made with (disk, ISO, keys, certs).
//! - [`vm`]: QEMU: its command line, the accelerator, QMP, the console,
//!   the guest's RAM and control port, start and stop.
//! - [`agent`]: the host agent, a process beside each running QEMU.
//! - [`forward`]: port forwarding, which the agent runs.
//! - [`shares`]: host folders in the guest, served confined.
//! - [`suspend`]: a running machine saved to its directory and resumed.
//! - [`engine`]: the Docker engine's settings.
//! - [`network`]: private networks between machines.
//! - [`client`]: what the host's Docker clients use (the CLI context).
//! - [`ui`]: progress, several machines' progress at once, hints.

pub mod agent;
pub mod client;
pub mod cmd;
pub mod engine;
pub mod forward;
pub mod network;
pub mod shares;
pub mod store;
pub mod suspend;
pub mod ui;
pub mod vm;
