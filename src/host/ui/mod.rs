//! What people see while b2d works: progress of a long wait, one line
//! per machine when several boot together, and hints on what to type
//! next.

pub mod hints;
pub mod multi_progress;
pub mod progress;
