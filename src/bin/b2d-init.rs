//! Guest PID 1. The agent logic lives in the library (`b2d::guest`).

fn main() {
    println!("b2d-init {}", env!("CARGO_PKG_VERSION"));
}
