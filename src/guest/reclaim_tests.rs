use super::*;

const STAT: &str = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\nintr 1\n";
const MEMINFO: &str = "MemTotal:        2020944 kB\nMemFree:         1683832 kB\nCached:           240488 kB\nMapped:           108456 kB\nShmem:              2692 kB\n";

#[test]
fn proc_files_parse() {
    assert_eq!(parse_stat(STAT), Some((980, 820)));
    assert_eq!(parse_stat("cpu0 1 2 3 4\n"), None);
    assert_eq!(parse_stat("cpu  1 x 3 4\n"), None);
    assert_eq!(parse_meminfo(MEMINFO), Some(240488 - 108456 - 2692));
    assert_eq!(parse_meminfo("Cached: 1 kB\n"), None);
    // SwapCached is not Cached.
    assert_eq!(
        parse_meminfo("SwapCached: 9 kB\nCached: 10 kB\nShmem: 1 kB\nMapped: 2 kB\n"),
        Some(7)
    );
}

fn s(total: u64, idle: u64, cache_mib: u64) -> Sample {
    Sample {
        cpu: (total, idle),
        unmapped_cache_kib: cache_mib << 10,
    }
}

#[test]
fn drops_only_after_idle_rounds_in_a_row_with_cache_worth_dropping() {
    let mut r = Reclaimer::new(Policy::default());
    assert!(
        !r.step(s(0, 0, 100)),
        "the first round has nothing to compare"
    );
    assert!(!r.step(s(1000, 990, 100))); // 1 % busy: idle 1
    assert!(!r.step(s(2000, 1500, 100))); // 50 % busy: the streak ends
    assert!(!r.step(s(3000, 2950, 100))); // idle 1
    assert!(!r.step(s(4000, 3950, 100))); // idle 2
    assert!(r.step(s(5000, 4950, 100)), "the third idle round drops");
    // After a drop the streak starts again.
    assert!(!r.step(s(6000, 5950, 100)));
    assert!(!r.step(s(7000, 6950, 100)));
    assert!(r.step(s(8000, 7950, 100)));
    // Idle, but too little cache to bother.
    for i in 0..5 {
        assert!(!r.step(s(9000 + i * 1000, 8950 + i * 1000, 31)));
    }
    // A clock that did not move counts as idle, not as busy or a panic.
    assert!(r.step(s(13000, 12950, 64)));
}

#[test]
fn the_knobs_are_written_where_the_kernel_has_them() {
    let d = tempfile::tempdir().unwrap();
    let p = Paths {
        proc_root: d.path().join("proc"),
        sys_root: d.path().join("sys"),
    };
    let knob = p
        .sys_root
        .join("module/page_reporting/parameters/page_reporting_order");
    std::fs::create_dir_all(knob.parent().unwrap()).unwrap();
    std::fs::write(&knob, "9\n").unwrap();
    p.report_single_pages();
    assert_eq!(std::fs::read_to_string(&knob).unwrap(), "0");

    std::fs::create_dir_all(p.proc_root.join("sys/vm")).unwrap();
    std::fs::write(p.proc_root.join("stat"), STAT).unwrap();
    std::fs::write(p.proc_root.join("meminfo"), MEMINFO).unwrap();
    assert_eq!(
        p.sample(),
        Some(s(980, 820, 0)).map(|x| Sample {
            unmapped_cache_kib: 240488 - 108456 - 2692,
            ..x
        })
    );
    p.drop_caches().unwrap();
    assert_eq!(
        std::fs::read_to_string(p.proc_root.join("sys/vm/drop_caches")).unwrap(),
        "1"
    );
    let cg = p.sys_root.join("fs/cgroup");
    p.reclaim_cold_files(); // no cgroup2 there: nothing happens
    std::fs::create_dir_all(&cg).unwrap();
    p.reclaim_cold_files();
    assert_eq!(
        std::fs::read_to_string(cg.join("memory.reclaim")).unwrap(),
        "32M swappiness=0"
    );
}
