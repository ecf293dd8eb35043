//! Host companion logic (`b2d`).

pub mod accel;
pub mod certs;
pub mod create;
pub mod disk_cmd;
pub mod machine;
pub mod qemu;
pub mod ssh_keys;
pub mod vmspec;
