//! Every seed of every fuzz target (`fuzz/seeds/TARGET/*`), crash
//! regressions included, through exactly the function the target calls
//! (`b2d::fuzzing`): none may panic or take long. And the fuzz crate, its
//! target files and the seed folders name the same targets.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

fn fuzz_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz"))
}

/// The names of the entries of `dir` (file names without `.rs` for the
/// target sources).
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .map(|n| n.trim_end_matches(".rs").to_string())
        .collect()
}

#[test]
fn every_target_has_its_source_its_bin_and_its_seeds() {
    let targets: BTreeSet<String> = b2d::fuzzing::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(names(&fuzz_dir().join("fuzz_targets")), targets);
    assert_eq!(names(&fuzz_dir().join("seeds")), targets);
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let bins: BTreeSet<String> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "b2d-fuzz")
        .map(str::to_string)
        .collect();
    assert_eq!(bins, targets, "the [[bin]] entries of fuzz/Cargo.toml");
    for t in &targets {
        let source =
            std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{t}.rs"))).unwrap();
        assert!(
            source.contains(&format!("b2d::fuzzing::{t}(data)")),
            "fuzz_targets/{t}.rs does not call b2d::fuzzing::{t}"
        );
    }
}

#[test]
fn every_seed_runs_quickly_without_a_panic() {
    let mut total = 0;
    for (name, run) in b2d::fuzzing::TARGETS {
        let dir = fuzz_dir().join("seeds").join(name);
        let mut seeds: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
        for seed in seeds {
            let data = std::fs::read(&seed).unwrap();
            total += data.len();
            let start = Instant::now();
            if let Err(e) = std::panic::catch_unwind(|| run(&data)) {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("{name}: {} panics: {why}", seed.display());
            }
            let took = start.elapsed();
            assert!(
                took < Duration::from_secs(1),
                "{name}: {} took {took:?}",
                seed.display()
            );
        }
    }
    assert!(
        total < 64 << 10,
        "the seeds are meant to be small: {total} bytes"
    );
}
