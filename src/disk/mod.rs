//! The on-disk contract, shared by guest and host.
//!
//! - [`magic`]: the docker-machine magic string at byte 0.
//! - [`userdata`]: the userdata ustar archive (builder and hostile-input-safe reader).
//! - [`probe`]: partition-table and filesystem signature probing over `Read + Seek`.
//! - [`image`]: sparse disk image writers and readers (raw, qcow2, vmdk, vhd).
//! - [`layout`]: where a formatted data disk puts its partitions and the
//!   format journal; [`journal`]: that journal (crash-safe first boot).
//! - [`size`]: human size strings such as `20G`.

pub(crate) mod bytes;
pub mod image;
pub mod journal;
pub mod layout;
pub mod magic;
pub mod probe;
pub mod size;
pub mod userdata;
