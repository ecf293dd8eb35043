//! Guest agent logic (`b2d-init`, PID 1).

pub mod disk;
