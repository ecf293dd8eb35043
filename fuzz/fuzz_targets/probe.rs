//! Feed arbitrary bytes to the partition-table and filesystem prober as if
//! they were a whole disk. It must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let mut cursor = Cursor::new(data);
    let _ = b2d::disk::probe::probe(&mut cursor, data.len() as u64);
});
