//! `make torture`: the whole fault suite, one case after another, then
//! one summary line. A failed case is reported and the rest still run;
//! the exit status is 1 if any failed.

use qemu_tests::torture::{self, cuts, in_use, services};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run `f`, turning a failed assertion into a line (the panic message
/// itself is already on stderr).
fn case<T>(name: &str, failed: &mut Vec<String>, f: impl FnOnce() -> T) -> Option<T> {
    eprintln!("torture: {name}");
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            failed.push(name.to_string());
            None
        }
    }
}

fn main() {
    let iso = qemu_tests::fixture::iso();
    let mut failed = Vec::new();
    let mut done = Vec::new();
    for p in cuts::ALL {
        let t = tempfile::tempdir().expect("a temp dir");
        let name = format!("power cut {}ms after {:?}", p.delay_ms, p.after);
        if let Some(c) = case(&name, &mut failed, || cuts::first_boot(&iso, t.path(), *p)) {
            eprintln!(
                "torture: … landed in {} (format committed: {})",
                c.phase, c.committed
            );
            done.push(c);
        }
    }
    let m = torture::machine("torture");
    let blocks = case("power cut during fsynced writes", &mut failed, || {
        in_use::fsynced_writes(&m, 40)
    });
    let load = case("power cut during docker load", &mut failed, || {
        in_use::docker_load(&m)
    });
    let kills = case("services killed", &mut failed, || services::kills(&m));
    let crash = case("dockerd in a crash loop", &mut failed, || {
        services::crash_loop(&m)
    });
    let full = case("data disk full", &mut failed, || services::disk_full(&m));
    let hooks = case("misbehaving hooks", &mut failed, || services::hooks(&m));
    let reboots = case("reboot soak", &mut failed, || services::soak(&m, 10));
    drop(m);

    eprintln!("\npower cuts by phase:");
    for (phase, n) in cuts::by_phase(&done) {
        eprintln!("  {phase}: {n}");
    }
    let lost = cuts::ALL.len() - done.len();
    let yes = |o: Option<()>, what: &str| {
        if o.is_some() {
            what.to_string()
        } else {
            format!("{what} FAILED")
        }
    };
    println!(
        "torture: {} power cuts ({lost} lost), in-use cuts {}, {} reboots, {} service kills recovered, {}, {}, {}",
        cuts::ALL.len(),
        match (blocks, load) {
            (Some(b), Some(())) => format!("recovered ({b} fsynced blocks intact, docker load)"),
            _ => "FAILED".into(),
        },
        reboots.unwrap_or(0),
        kills.unwrap_or(0),
        yes(crash, "crash loop contained"),
        yes(full, "disk-full recovered"),
        yes(hooks, "hooks survived"),
    );
    if !failed.is_empty() {
        eprintln!("failed: {}", failed.join("; "));
        std::process::exit(1);
    }
}
