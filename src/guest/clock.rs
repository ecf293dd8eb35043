//! Keeping the guest's clock right after the VM was paused or the host
//! slept: QEMU's RTC follows the host's clock all along (`-rtc
//! base=utc,clock=host` on the host's QEMU command line), while the guest's
//! system clock stands still with the VM. Every second a thread of PID 1
//! compares the two; when they differ by more than a second it waits for
//! the RTC's next second to begin (it counts whole seconds) and steps the
//! system clock to it, logging one line. A paused VM is right again about
//! two seconds after it runs again, without a reboot and without asking
//! the host.

use crate::sys::Sys;
use std::io;
use std::path::Path;
use std::time::Duration;

/// How often the clocks are compared.
pub const EVERY: Duration = Duration::from_secs(1);
/// How often the RTC is read while waiting for its next second.
pub const POLL: Duration = Duration::from_millis(10);
/// A drift the guest lives with (the RTC's own resolution).
pub const TOLERANCE_MS: i64 = 1000;
/// Longest wait for the RTC's next second.
const EDGE_WAIT: Duration = Duration::from_millis(2500);

/// How far the system clock (`system_ms`) is certainly off the true time
/// an RTC reading `rtc_s` stands for (somewhere in `[rtc_s, rtc_s + 1)`
/// seconds), when that is more than [`TOLERANCE_MS`]; positive: ahead.
pub fn drift(system_ms: u64, rtc_s: u64) -> Option<i64> {
    let sys = system_ms as i64;
    let lo = rtc_s as i64 * 1000;
    let hi = lo + 1000;
    if sys < lo - TOLERANCE_MS {
        Some(sys - lo)
    } else if sys > hi + TOLERANCE_MS {
        Some(sys - hi)
    } else {
        None
    }
}

/// A step of the system clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stepped {
    pub from_ms: u64,
    pub to_ms: u64,
}

impl std::fmt::Display for Stepped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.to_ms.abs_diff(self.from_ms) as f64 / 1000.0;
        let way = if self.to_ms >= self.from_ms {
            "forward"
        } else {
            "back"
        };
        write!(
            f,
            "clock: stepped {secs:.1} s {way} to the hardware clock (the VM was paused or the host slept)"
        )
    }
}

/// Compare the clocks once; step the system clock to the RTC's next
/// second when it drifted. `sleep` waits (the real one at boot).
pub fn check(sys: &dyn Sys, rtc: &Path, sleep: &dyn Fn(Duration)) -> io::Result<Option<Stepped>> {
    let now = sys.clock_ms()?;
    let first = sys.rtc_seconds(rtc)?;
    if drift(now, first).is_none() {
        return Ok(None);
    }
    let mut waited = Duration::ZERO;
    let edge = loop {
        sleep(POLL);
        waited += POLL;
        let s = sys.rtc_seconds(rtc)?;
        if s != first {
            break s;
        }
        if waited >= EDGE_WAIT {
            return Err(io::Error::other(format!(
                "{}: the hardware clock did not tick for {:.1} s",
                rtc.display(),
                waited.as_secs_f64()
            )));
        }
    };
    // The second began within the last poll: land in its middle.
    let to_ms = edge * 1000 + POLL.as_millis() as u64 / 2;
    let from_ms = sys.clock_ms()?;
    sys.set_clock(to_ms)?;
    Ok(Some(Stepped { from_ms, to_ms }))
}

/// Keep the clock right forever (a thread of PID 1); without an RTC it
/// says so once and ends.
pub fn run(sys: &dyn Sys, rtc: &Path) {
    if let Err(e) = sys.rtc_seconds(rtc) {
        log::warn!(
            "clock: no hardware clock at {} ({e}); the clock is not set right after a pause",
            rtc.display()
        );
        return;
    }
    let mut failing = false;
    loop {
        std::thread::sleep(EVERY);
        match check(sys, rtc, &std::thread::sleep) {
            Ok(step) => {
                if failing {
                    log::info!("clock: the hardware clock reads again");
                }
                failing = false;
                if let Some(s) = step {
                    log::info!("{s}");
                }
            }
            Err(e) => {
                if !failing {
                    log::warn!("clock: {e}; trying again every second");
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    const T: u64 = 1_800_000_000_000;

    fn rtc() -> &'static Path {
        Path::new("/sys/class/rtc/rtc0")
    }

    #[test]
    fn drift_is_counted_only_beyond_the_rtc_s_own_second() {
        // The RTC reads 1000 s: the true time is in [1000, 1001) s.
        assert_eq!(drift(1_000_000, 1000), None);
        assert_eq!(drift(1_000_999, 1000), None);
        assert_eq!(drift(999_000, 1000), None, "one second behind at most");
        assert_eq!(drift(1_002_000, 1000), None, "one second ahead at most");
        assert_eq!(drift(998_999, 1000), Some(-1001));
        assert_eq!(drift(1_002_001, 1000), Some(1001));
        assert_eq!(drift(940_000, 1000), Some(-60_000));
    }

    #[test]
    fn a_paused_guest_steps_to_the_rtc_s_next_second() {
        let sys = FakeSys::new();
        // Paused for 60 s: the system clock stood still, the RTC did not.
        sys.set_clocks(T, T + 60_000 + 400);
        let sleep = |d: Duration| sys.advance(d);
        let s = check(&sys, rtc(), &sleep).unwrap().unwrap();
        // The RTC ticked 600 ms later, to T + 61 s.
        assert_eq!(s.to_ms, T + 61_000 + 5);
        assert_eq!(s.from_ms, T + 600);
        let now = sys.system_ms().unwrap();
        let truth = T + 60_000 + 400 + 600;
        assert!(
            now.abs_diff(truth) <= POLL.as_millis() as u64,
            "{now} vs {truth}"
        );
        assert_eq!(
            s.to_string(),
            "clock: stepped 60.4 s forward to the hardware clock (the VM was paused or the host slept)"
        );
        // Right now: nothing more to do, and no more steps.
        let calls = sys.calls().len();
        assert_eq!(check(&sys, rtc(), &sleep).unwrap(), None);
        assert!(!sys.calls()[calls..]
            .iter()
            .any(|c| c.starts_with("set_clock")));
    }

    #[test]
    fn a_clock_ahead_steps_back_and_a_small_drift_is_left_alone() {
        let sys = FakeSys::new();
        sys.set_clocks(T + 5_000, T);
        let s = check(&sys, rtc(), &|d| sys.advance(d)).unwrap().unwrap();
        assert_eq!(s.to_ms, T + 1_005);
        assert!(s.to_string().contains("stepped 5.0 s back"), "{s}");
        let sys = FakeSys::new();
        sys.set_clocks(T + 800, T + 100);
        assert_eq!(check(&sys, rtc(), &|d| sys.advance(d)).unwrap(), None);
        assert!(!sys.calls().iter().any(|c| c.starts_with("set_clock")));
    }

    #[test]
    fn a_stuck_or_missing_rtc_is_an_error_not_a_step() {
        let sys = FakeSys::new();
        sys.set_clocks(T, T + 60_000);
        // Time never passes: the RTC never ticks.
        let e = check(&sys, rtc(), &|_| {}).unwrap_err().to_string();
        assert!(e.contains("did not tick"), "{e}");
        assert!(!sys.calls().iter().any(|c| c.starts_with("set_clock")));
        let none = FakeSys::new();
        assert!(check(&none, rtc(), &|_| {}).is_err());
        sys.fail_on("set_clock", io::ErrorKind::PermissionDenied);
        assert!(check(&sys, rtc(), &|d| sys.advance(d)).is_err());
    }
}
