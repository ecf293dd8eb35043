//! `b2d::fuzzing::vhd`: see there for what must hold (the main
//! workspace replays the seeds in `fuzz/seeds/vhd` through it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    b2d::fuzzing::vhd(data);
});
