//! b2d: a boot2docker-like Docker host.
//!
//! - [`disk`]: the on-disk contract shared by the guest agent and the host
//!   companion (magic, userdata archive, probing, sparse image writers).
//! - `guest`: the PID 1 agent logic (`b2d-init`).
//! - `host`: the host companion logic (`b2d`).

pub mod disk;
pub mod guest;
pub mod host;
pub mod sys;
