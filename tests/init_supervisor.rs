//! The real supervisor over real children: restart with backoff, one-shot
//! services, orphan reaping, ordered stop with SIGKILL escalation. One test
//! function: `waitpid(-1)` must not race other tests in this binary.

use b2d::guest::supervisor::{
    become_subreaper, block_signals, Backoff, Event, LoopEnd, Output, Restart, Service, Supervisor,
};
use std::time::{Duration, Instant};

#[test]
fn restarts_with_backoff_reaps_orphans_and_stops_in_order() {
    block_signals().unwrap();
    become_subreaper().unwrap();
    let ms = Duration::from_millis;
    let backoff = Backoff {
        initial: ms(50),
        max: ms(200),
        reset_after: Duration::from_secs(60),
    };
    let mut stubborn = Service::new(
        "stubborn",
        &["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"],
        Restart::Always,
    );
    stubborn.stop_timeout = ms(300);
    // Says why it ends, among other output, each run into the same log.
    let logs = tempfile::tempdir().unwrap();
    let mut talker = Service::new(
        "talker",
        &[
            "sh",
            "-c",
            "echo 'time=\"x\" level=info msg=\"starting\"'; echo 'bad setting: foo' >&2; exit 1",
        ],
        Restart::Always,
    );
    talker.output = Output::File(logs.path().join("talker.log"));
    let services = vec![
        Service::new("sleeper", &["sleep", "30"], Restart::Always),
        stubborn,
        Service::new("flaky", &["sh", "-c", "exit 3"], Restart::Always),
        talker,
        // Leaves an orphan behind: the background sleep outlives its parent.
        Service::new(
            "orphaner",
            &["sh", "-c", "sleep 0.3 & exit 0"],
            Restart::Never,
        ),
        Service::new("missing", &["/nonexistent/b2d-test-binary"], Restart::Never),
    ];
    let mut sup = Supervisor::new(services, backoff).unwrap();
    sup.tick = ms(50);
    let deadline = Instant::now() + Duration::from_secs(20);
    let orphans = |s: &Supervisor| {
        s.events
            .iter()
            .filter(|e| matches!(e, Event::Orphan { .. }))
            .count()
    };
    let end = sup.run(|s| Instant::now() > deadline || (s.exits("flaky") >= 5 && orphans(s) >= 1));
    assert_eq!(end, LoopEnd::Stopped);
    assert!(Instant::now() <= deadline, "timed out: {:#?}", sup.events);

    // flaky: restarted each time with the doubling, capped delay.
    let delays: Vec<Duration> = sup
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Exited {
                name,
                status,
                restart_in,
                ..
            } if name == "flaky" => {
                assert_eq!(status, "exit code 3");
                *restart_in
            }
            _ => None,
        })
        .collect();
    assert_eq!(&delays[..5], &[ms(50), ms(100), ms(200), ms(200), ms(200)]);
    assert!(sup.starts("flaky") >= 5);

    // Each end of talker carries the words of that run only; its exits
    // are counted where another thread can watch them.
    let said: Vec<Option<String>> = sup
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Exited { name, said, .. } if name == "talker" => Some(said.clone()),
            _ => None,
        })
        .collect();
    assert!(said.len() >= 3, "{said:?}");
    for s in &said {
        assert_eq!(s.as_deref(), Some("bad setting: foo"));
    }
    let counter = sup.exit_counter("talker").unwrap();
    assert_eq!(
        counter.load(std::sync::atomic::Ordering::SeqCst),
        sup.exits("talker")
    );
    assert!(sup.exit_counter("nobody").is_none());
    // flaky writes to the console: no words to keep.
    assert!(sup.events.iter().all(|e| match e {
        Event::Exited { name, said, .. } if name == "flaky" => said.is_none(),
        _ => true,
    }));

    // One-shots run once; a missing binary is reported, not retried.
    assert_eq!(sup.starts("orphaner"), 1);
    assert_eq!(sup.exits("orphaner"), 1);
    assert_eq!(sup.starts("missing"), 1);
    assert!(sup
        .events
        .iter()
        .any(|e| matches!(e, Event::StartFailed { name, .. } if name == "missing")));

    // The orphan was not mistaken for a service.
    let service_pids: Vec<i32> = sup
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Started { pid, .. } => Some(*pid),
            _ => None,
        })
        .collect();
    for e in &sup.events {
        if let Event::Orphan { pid, status } = e {
            assert!(!service_pids.contains(pid));
            assert_eq!(status, "exit code 0");
        }
    }
    assert_eq!(sup.starts("sleeper"), 1);
    assert_eq!(sup.starts("stubborn"), 1);
    let sleeper = sup.pid("sleeper").unwrap();
    let stubborn = sup.pid("stubborn").unwrap();

    // Stop: reverse order (stubborn before sleeper); stubborn needs SIGKILL.
    let before = sup.events.len();
    sup.stop_all();
    let exits: Vec<(i32, String)> = sup.events[before..]
        .iter()
        .filter_map(|e| match e {
            Event::Exited {
                pid,
                status,
                restart_in,
                ..
            } => {
                assert_eq!(*restart_in, None);
                Some((*pid, status.clone()))
            }
            _ => None,
        })
        .collect();
    let pos = |p: i32| exits.iter().position(|(x, _)| *x == p).unwrap();
    assert!(pos(stubborn) < pos(sleeper), "{exits:?}");
    assert_eq!(exits[pos(stubborn)].1, "killed by SIGKILL");
    assert_eq!(exits[pos(sleeper)].1, "killed by SIGTERM");
    assert_eq!(sup.pid("sleeper"), None);

    // Nothing is left to reap or restart.
    std::thread::sleep(ms(300));
    sup.reap();
    assert_eq!(sup.starts("sleeper"), 1);
}
