//! `make torture`: the whole fault suite, one case after another, then
//! one summary line. A failed case is reported and the rest still run;
//! the exit status is 1 if any failed. Arguments run only the cases whose
//! names contain one of them (`make torture ONLY="ecdsa soak"`).

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

/// The names of the cases on a running machine, in the order they run.
const IN_USE: &[&str] = &[
    "power cut during fsynced writes",
    "power cut during docker load",
    "services killed",
    "dockerd in a crash loop",
    "data disk full",
    "misbehaving hooks",
    "reboot soak",
];

fn main() {
    let iso = qemu_tests::fixture::iso();
    let only: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |n: &str| only.is_empty() || only.iter().any(|o| n.contains(o.as_str()));
    let mut failed = Vec::new();
    let mut done = Vec::new();
    let cut_names = cuts::ALL
        .iter()
        .map(|p| format!("power cut {}ms after {:?}", p.delay_ms, p.after));
    let picked: Vec<_> = cuts::ALL
        .iter()
        .zip(cut_names)
        .filter(|(_, n)| wanted(n))
        .collect();
    for (p, name) in &picked {
        let t = tempfile::tempdir().expect("a temp dir");
        let name = name.clone();
        if let Some(c) = case(&name, &mut failed, || cuts::first_boot(&iso, t.path(), **p)) {
            eprintln!(
                "torture: … landed in {} (format committed: {})",
                c.phase, c.committed
            );
            done.push(c);
        }
    }
    let (mut blocks, mut load, mut kills, mut crash, mut full, mut hooks, mut reboots) =
        (None, None, None, None, None, None, None);
    if IN_USE.iter().any(|n| wanted(n)) {
        let m = torture::machine("torture");
        let mut run = |n: &str, f: &mut dyn FnMut()| {
            if wanted(n) {
                case(n, &mut failed, f);
            }
        };
        run(IN_USE[0], &mut || {
            blocks = Some(in_use::fsynced_writes(&m, 40))
        });
        run(IN_USE[1], &mut || {
            in_use::docker_load(&m);
            load = Some(());
        });
        run(IN_USE[2], &mut || kills = Some(services::kills(&m)));
        run(IN_USE[3], &mut || {
            services::crash_loop(&m);
            crash = Some(());
        });
        run(IN_USE[4], &mut || {
            services::disk_full(&m);
            full = Some(());
        });
        run(IN_USE[5], &mut || {
            services::hooks(&m);
            hooks = Some(());
        });
        run(IN_USE[6], &mut || reboots = Some(services::soak(&m, 10)));
    }

    eprintln!("\npower cuts by phase:");
    for (phase, n) in cuts::by_phase(&done) {
        eprintln!("  {phase}: {n}");
    }
    let lost = picked.len() - done.len();
    let yes = |o: Option<()>, what: &str| {
        if o.is_some() {
            what.to_string()
        } else {
            format!("{what} FAILED")
        }
    };
    println!(
        "torture: {} power cuts ({lost} lost), in-use cuts {}, {} reboots, {} service kills recovered, {}, {}, {}",
        picked.len(),
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
