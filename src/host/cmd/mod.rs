//! The verbs of `b2d`, one module each, as functions over parsed options
//! that return what happened; `src/bin/b2d.rs` parses arguments and
//! renders the outcomes.

pub mod disk;
pub mod env;
pub mod lifecycle;
pub mod logs;
pub mod ssh;
pub mod status;
pub mod up;
