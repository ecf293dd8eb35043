//! QEMU harness for end-to-end tests of the b2d ISO: boot with given disks,
//! NIC and firmware; KVM when a probe boot proves it works, else TCG;
//! serial console captured to a file; wait for the `b2d-ready` line; ssh
//! with the test key; QEMU always killed on drop, with the serial tail
//! printed when a test fails.

pub mod fixture;
pub mod machines;
pub mod torture;
pub mod user;
pub mod vm;

/// The accelerator probe and the QEMU command line are the host
/// companion's own (`b2d up` boots with the same code).
pub use b2d::host::{vm::accel, vm::spec};

pub use accel::Accel;
pub use spec::{DiskBus, Nic, VmSpec};
pub use vm::{Ready, Vm};
