//! Host companion logic (`b2d`).

pub mod accel;
pub mod certs;
pub mod console;
pub mod create;
pub mod disk_cmd;
pub mod env;
pub mod hints;
pub mod iso;
pub mod lifecycle;
pub mod logs;
pub mod machine;
pub mod progress;
pub mod qemu;
pub mod ssh;
pub mod ssh_keys;
pub mod status;
pub mod up;
pub mod vmspec;
