//! Host companion logic (`b2d`).
//!
//! [`cmd`] holds one module per verb; everything else here is plumbing
//! the verbs share: the machine store, creation, data disk images,
//! certificates, port choice, the QEMU driver and VM spec, the accelerator
//! probe, the console reader and the progress display. Plumbing never
//! depends on a verb.

pub mod accel;
pub mod agent;
pub mod agent_log;
pub mod agent_run;
pub mod board;
pub mod certs;
pub mod cmd;
pub mod console;
pub mod console_rotate;
pub mod context;
pub mod control;
pub mod create;
pub mod disk_image;
pub mod engine;
pub mod hints;
pub mod iso;
pub mod machine;
pub mod network;
pub mod ports;
pub mod progress;
pub mod qemu;
pub mod qmp;
pub mod ram;
pub mod saved;
pub mod shares;
pub mod ssh_keys;
pub mod suspend;
pub mod tunnel;
pub mod vmspec;
