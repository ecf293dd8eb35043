//! `b2d::fuzzing::qcow2`: see there for what must hold (the main
//! workspace replays the seeds in `fuzz/seeds/qcow2` through it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    b2d::fuzzing::qcow2(data);
});
