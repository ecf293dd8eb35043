use super::*;

const PAGES: u64 = 64;
const SIZE: u64 = PAGES * PAGE as u64;

/// A memfd with a few pages written: 0 and 7 (non-zero), 9 (zeros
/// written: data, but a zero page), 63 (the last).
fn guest() -> File {
    let f = memfd(SIZE).unwrap();
    for (page, byte) in [(0u64, 1u8), (7, 0xaa), (9, 0), (63, 0x55)] {
        f.write_all_at(&[byte; PAGE], page * PAGE as u64).unwrap();
    }
    f
}

fn contents(f: &File) -> Vec<u8> {
    let mut v = vec![0u8; SIZE as usize];
    f.read_exact_at(&mut v, 0).unwrap();
    v
}

fn saved(dir: &Path) -> (PathBuf, String) {
    let g = guest();
    let src = PathBuf::from(format!("/proc/self/fd/{}", g.as_raw_fd()));
    let dst = dir.join("suspend.ram");
    let sum = save(&src, SIZE, &dst).unwrap();
    (dst, sum)
}

#[test]
fn saved_ram_fills_a_new_memfd_byte_for_byte_and_stays_sparse() {
    let d = tempfile::tempdir().unwrap();
    let (dst, sum) = saved(d.path());
    assert_eq!(std::fs::metadata(&dst).unwrap().len(), SIZE);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&dst).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the guest's memory is private");
    use std::os::unix::fs::MetadataExt;
    let blocks = std::fs::metadata(&dst).unwrap().blocks() * 512;
    assert!(
        blocks <= 8 * PAGE as u64,
        "3 pages of data took {blocks} bytes on disk"
    );
    let ram = memfd(SIZE).unwrap();
    assert_eq!(fill(&dst, SIZE, &ram).unwrap(), sum);
    let held = ram.metadata().unwrap().blocks() * 512;
    assert_eq!(
        held,
        3 * PAGE as u64,
        "only the non-zero pages are filled in"
    );
    assert_eq!(contents(&ram), contents(&guest()));
}

#[test]
fn a_flipped_byte_or_a_page_gone_to_zeros_changes_the_checksum() {
    let d = tempfile::tempdir().unwrap();
    let (dst, sum) = saved(d.path());
    let f = std::fs::OpenOptions::new().write(true).open(&dst).unwrap();
    f.write_all_at(&[0xab], 7 * PAGE as u64 + 100).unwrap();
    let ram = memfd(SIZE).unwrap();
    assert_ne!(fill(&dst, SIZE, &ram).unwrap(), sum);

    let (dst, sum) = saved(d.path());
    let f = std::fs::OpenOptions::new().write(true).open(&dst).unwrap();
    f.write_all_at(&[0; PAGE], 63 * PAGE as u64).unwrap();
    assert_ne!(fill(&dst, SIZE, &memfd(SIZE).unwrap()).unwrap(), sum);
}

#[test]
fn the_ram_of_a_process_is_its_memfd_of_that_size() {
    // A size no other test of this process uses.
    let size = SIZE + 3 * PAGE as u64;
    let g = memfd(size).unwrap();
    let found = find(std::process::id(), size).expect("the memfd is found");
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(
        ino(&found),
        ino(Path::new(&format!("/proc/self/fd/{}", g.as_raw_fd())))
    );
    assert_eq!(find(std::process::id(), size + 1), None);
}

#[test]
fn qemu_gets_its_own_memfd_or_the_one_passed_to_it() {
    assert_eq!(
        qemu_args(2048, None).join(" "),
        "-object memory-backend-memfd,id=mem0,size=2048M,share=on -machine memory-backend=mem0"
    );
    assert_eq!(
        qemu_args(1024, Some(5)).join(" "),
        "-object memory-backend-file,id=mem0,size=1024M,share=on,mem-path=/proc/self/fd/5 \
         -machine memory-backend=mem0"
    );
}

#[test]
fn chunks_on_both_lanes_round_trip_and_are_checked() {
    let size = 3 * CHUNK as u64;
    let g = memfd(size).unwrap();
    for (at, byte) in [
        (0u64, 3u8),
        (CHUNK as u64 + 4096, 4),
        (2 * CHUNK as u64 + 8192, 5),
    ] {
        g.write_all_at(&[byte; PAGE], at).unwrap();
    }
    let d = tempfile::tempdir().unwrap();
    let src = PathBuf::from(format!("/proc/self/fd/{}", g.as_raw_fd()));
    let dst = d.path().join("suspend.ram");
    let sum = save(&src, size, &dst).unwrap();
    let ram = memfd(size).unwrap();
    assert_eq!(fill(&dst, size, &ram).unwrap(), sum);
    let read = |f: &File| {
        let mut v = vec![0u8; size as usize];
        f.read_exact_at(&mut v, 0).unwrap();
        v
    };
    assert_eq!(read(&ram), read(&g));
    // Damage in the second lane's chunk.
    let f = std::fs::OpenOptions::new().write(true).open(&dst).unwrap();
    f.write_all_at(&[9], CHUNK as u64 + 4096).unwrap();
    assert_ne!(fill(&dst, size, &memfd(size).unwrap()).unwrap(), sum);
}
