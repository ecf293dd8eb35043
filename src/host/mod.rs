//! Host companion logic (`b2d`).

pub mod disk_cmd;
pub mod ssh_keys;
