//! The sample of the fault suite that `make test` runs (the whole suite
//! is `make torture`): power cuts at points spread over a first boot, a
//! cut during fsynced writes, and every service killed.

use qemu_tests::torture::{self, cuts, in_use, services};

#[test]
fn power_cuts_during_the_first_boot() {
    let iso = qemu_tests::fixture::iso();
    let points = if torture::full() {
        cuts::ALL
    } else {
        cuts::SAMPLE
    };
    let mut done = Vec::new();
    for p in points {
        let t = tempfile::tempdir().unwrap();
        done.push(cuts::first_boot(&iso, t.path(), *p));
    }
    for (phase, n) in cuts::by_phase(&done) {
        eprintln!("power cuts in {phase}: {n}");
    }
    // The sample's points land in four different phases.
    assert!(cuts::by_phase(&done).len() >= 4, "{done:?}");
}

#[test]
fn a_power_cut_in_use_and_killed_services() {
    let m = torture::machine("torture-sample");
    let blocks = in_use::fsynced_writes(&m, 20);
    eprintln!("{blocks} fsynced blocks intact after the cut");
    assert_eq!(services::kills(&m), 3);
}
