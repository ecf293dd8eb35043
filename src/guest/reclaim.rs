//! Giving the guest's memory back to the host.
//!
//! QEMU's virtio-balloon with `free-page-reporting=on` takes back every
//! page the guest reports free. The kernel reports only free blocks of
//! 2 MiB by default, which freed page cache (single pages, scattered)
//! seldom forms, so the agent lowers the reporting order to single pages.
//!
//! Page cache is not free memory, and most of it after a boot is what
//! squashfs read ahead and nobody maps. So once the guest has been idle
//! for a while and its unmapped cache has grown past a threshold, the
//! agent drops the clean cache (`drop_caches` 1: dirty pages stay), as
//! WSL2's `autoMemoryReclaim=dropcache` does, and asks the kernel to
//! reclaim a little more of the coldest file pages, mapped ones included
//! (cgroup v2 `memory.reclaim` with `swappiness=0`: never anonymous memory,
//! so nothing goes to swap). A busy guest keeps its cache.

use std::path::PathBuf;
use std::time::Duration;

/// Reported free blocks, as a page order: single pages.
pub const REPORT_ORDER: &str = "0";

/// What `memory.reclaim` is asked for after the cache is dropped: the
/// coldest file pages (mostly start-up code of the Go daemons).
pub const COLD_FILE_PAGES: &str = "32M swappiness=0";

/// CPU time and memory, as read from /proc.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Jiffies since boot, all CPUs: (total, idle + iowait).
    pub cpu: (u64, u64),
    /// Page cache that nobody maps and that is not tmpfs, in KiB.
    pub unmapped_cache_kib: u64,
}

/// `(total, idle + iowait)` jiffies from the `cpu ` line of /proc/stat.
pub fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|w| w.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is
    // already inside user and nice).
    let total = v.iter().take(8).sum();
    Some((total, v.get(3)? + v.get(4).copied().unwrap_or(0)))
}

/// Cached − Shmem − Mapped from /proc/meminfo, in KiB.
pub fn parse_meminfo(meminfo: &str) -> Option<u64> {
    let field = |name: &str| {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    let cached = field("Cached")?;
    Some(cached.saturating_sub(field("Shmem")? + field("Mapped")?))
}

/// When to drop the cache.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// A round is idle when the CPUs were busy less than this (‰).
    pub idle_below_permille: u64,
    /// Idle rounds in a row before dropping.
    pub idle_rounds: u32,
    /// Unmapped cache worth dropping, in KiB.
    pub min_kib: u64,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            idle_below_permille: 100,
            idle_rounds: 3,
            min_kib: 32 << 10,
        }
    }
}

/// The policy's memory between rounds.
#[derive(Debug, Default)]
pub struct Reclaimer {
    pub policy: Policy,
    last: Option<Sample>,
    idle: u32,
}

impl Reclaimer {
    pub fn new(policy: Policy) -> Reclaimer {
        Reclaimer {
            policy,
            ..Reclaimer::default()
        }
    }

    /// One round: whether to drop the cache now.
    pub fn step(&mut self, now: Sample) -> bool {
        let Some(last) = self.last.replace(now) else {
            return false;
        };
        let total = now.cpu.0.saturating_sub(last.cpu.0);
        let idle = now.cpu.1.saturating_sub(last.cpu.1).min(total);
        let busy = ((total - idle) * 1000).checked_div(total).unwrap_or(0);
        if busy >= self.policy.idle_below_permille {
            self.idle = 0;
            return false;
        }
        self.idle += 1;
        if self.idle < self.policy.idle_rounds || now.unmapped_cache_kib < self.policy.min_kib {
            return false;
        }
        self.idle = 0;
        true
    }
}

/// Where the knobs are.
#[derive(Debug, Clone)]
pub struct Paths {
    pub proc_root: PathBuf,
    pub sys_root: PathBuf,
}

impl Paths {
    fn sample(&self) -> Option<Sample> {
        let stat = std::fs::read_to_string(self.proc_root.join("stat")).ok()?;
        let mem = std::fs::read_to_string(self.proc_root.join("meminfo")).ok()?;
        Some(Sample {
            cpu: parse_stat(&stat)?,
            unmapped_cache_kib: parse_meminfo(&mem)?,
        })
    }

    fn drop_caches(&self) -> std::io::Result<()> {
        std::fs::write(self.proc_root.join("sys/vm/drop_caches"), "1")
    }

    /// Ask for the coldest file pages; whether the kernel found them all
    /// (EAGAIN when not) does not matter. An older kernel without the
    /// `swappiness` key refuses the request (EINVAL) rather than swap.
    fn reclaim_cold_files(&self) {
        let p = self.sys_root.join("fs/cgroup/memory.reclaim");
        match std::fs::write(&p, COLD_FILE_PAGES) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
            Err(e) => log::debug!("memory: {}: {e}", p.display()),
        }
    }

    /// Report free memory page by page (the kernel's knob; absent without
    /// CONFIG_PAGE_REPORTING, which only costs the host memory).
    pub fn report_single_pages(&self) {
        let p = self
            .sys_root
            .join("module/page_reporting/parameters/page_reporting_order");
        match std::fs::write(&p, REPORT_ORDER) {
            Ok(()) => log::info!("memory: free pages are reported to the host one by one"),
            Err(e) => log::warn!(
                "memory: {}: {e}; free memory is returned in 2 MiB blocks only",
                p.display()
            ),
        }
    }
}

fn mib(kib: u64) -> u64 {
    kib >> 10
}

/// The agent's thread: a round every `every`, forever.
pub fn run(paths: &Paths, policy: Policy, every: Duration) {
    let mut r = Reclaimer::new(policy);
    loop {
        if let Some(s) = paths.sample() {
            if r.step(s) {
                match paths.drop_caches() {
                    Ok(()) => {
                        paths.reclaim_cold_files();
                        let after = paths.sample().map_or(0, |a| a.unmapped_cache_kib);
                        log::info!(
                            "memory: idle; dropped the page cache nobody maps ({} MiB → {} MiB)",
                            mib(s.unmapped_cache_kib),
                            mib(after)
                        );
                    }
                    Err(e) => {
                        log::warn!("memory: cannot drop the page cache: {e}");
                        return;
                    }
                }
            }
        }
        std::thread::sleep(every);
    }
}

/// The default rounds: every 10 s, so an idle guest drops its cache
/// within about 40 s.
pub const EVERY: Duration = Duration::from_secs(10);

#[cfg(test)]
#[path = "reclaim_tests.rs"]
mod tests;
