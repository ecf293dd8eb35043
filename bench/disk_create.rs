//! Time `image::create` of a 2 TiB disk per format (vhd: its 2040 GiB
//! maximum) against a floor measured in the same run: creating an empty
//! file, `set_len` to the same size, writing 4 KiB and fsync — the least any
//! sparse writer has to do. Prints the median of several runs, e.g.
//! `disk_create qcow2 2T: 0.41 ms (ratio 1.3 vs floor 0.31 ms)`.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, Instant};

use b2d::disk::image::{self, ImageFormat};

const TIB: u64 = 1 << 40;
const GIB: u64 = 1 << 30;

/// Each case this many times (`B2D_BENCH_RUNS`, default 15).
fn runs() -> usize {
    test_support::bench_runs(15)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn floor_once(path: &Path, size: u64, head: &[u8]) -> Duration {
    let t = Instant::now();
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .expect("create floor file");
    f.set_len(size).expect("set_len");
    f.write_all_at(head, 0).expect("write head");
    f.sync_all().expect("fsync");
    t.elapsed()
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let head: Vec<u8> = (0..4096u32).map(|i| (i % 255) as u8 + 1).collect();
    let formats = [
        (ImageFormat::Raw, 2 * TIB, "2T"),
        (ImageFormat::Qcow2, 2 * TIB, "2T"),
        (ImageFormat::Vmdk, 2 * TIB, "2T"),
        (ImageFormat::Vhd, 2040 * GIB, "2040G"),
    ];
    let floor_path = dir.path().join("floor");
    let floor = median(
        (0..runs())
            .map(|_| {
                let d = floor_once(&floor_path, 2 * TIB, &head);
                std::fs::remove_file(&floor_path).expect("rm floor");
                d
            })
            .collect(),
    );
    for (format, size, label) in formats {
        let path = dir.path().join(format!("disk.{format}"));
        let mut times = Vec::with_capacity(runs());
        let mut allocated = 0;
        for _ in 0..runs() {
            let t = Instant::now();
            image::create(&path, format, size, &head, false).expect("create image");
            times.push(t.elapsed());
            allocated = std::fs::metadata(&path).expect("stat").blocks() * 512;
            std::fs::remove_file(&path).expect("rm image");
        }
        let m = median(times);
        println!(
            "disk_create {format} {label}: {:.2} ms (ratio {:.1} vs floor {:.2} ms), {} KiB allocated",
            ms(m),
            ms(m) / ms(floor),
            ms(floor),
            allocated / 1024
        );
    }
}
