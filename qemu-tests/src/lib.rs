//! QEMU harness for end-to-end tests of the b2d ISO.
//!
//! The harness (boot the ISO with given disks, probe KVM and fall back to
//! TCG, capture the serial console, wait for the `b2d-ready` line) arrives
//! with the ISO build; this crate holds its place in the workspace.
