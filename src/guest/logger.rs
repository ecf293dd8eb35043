//! A tiny logger for PID 1: one line per record on stderr (the console at
//! boot), prefixed with milliseconds since the kernel booted, in the shape
//! of [`crate::wire::console`], which the host parses.

use crate::wire::console;
use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;

/// Milliseconds on CLOCK_MONOTONIC, i.e. since the kernel booted (not
/// counting suspend): the clock the ready line reports.
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer to
    // a local; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

struct ConsoleLogger;

static LOGGER: ConsoleLogger = ConsoleLogger;

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = console::format_line(
            monotonic_ms(),
            record.level().into(),
            &record.args().to_string(),
        );
        // One write per line so lines from threads do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Install the logger (idempotent) at `level`.
pub fn init(level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
