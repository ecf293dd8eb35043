//! Unit tests of the reader, mostly on hand-made malformed input.

use super::*;
use std::io::Read;

/// The header's (unsigned, signed) checksums.
fn sums(b: &[u8; BLOCK]) -> (u64, i64) {
    super::read::checksums(tar::Header::from_byte_slice(b))
}

/// A ustar header written independently of the builder, with a valid
/// checksum. Fields can be overwritten afterwards and [`reseal`]ed.
fn hdr(name: &str, flag: u8, mode: u32, size: usize) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name.as_bytes());
    b[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    b[108..116].copy_from_slice(b"0001750\0");
    b[116..124].copy_from_slice(b"0001750\0");
    b[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    b[136..148].copy_from_slice(b"14570712345\0");
    b[156] = flag;
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    reseal(&mut b);
    b
}

fn reseal(b: &mut [u8; BLOCK]) {
    let (sum, _) = sums(b);
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn set(mut b: [u8; BLOCK], at: usize, bytes: &[u8]) -> [u8; BLOCK] {
    b[at..at + bytes.len()].copy_from_slice(bytes);
    reseal(&mut b);
    b
}

/// A header followed by its padded data.
fn entry(b: [u8; BLOCK], data: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    v.extend_from_slice(data);
    v.resize(v.len() + (BLOCK - data.len() % BLOCK) % BLOCK, 0);
    v
}

fn file(name: &str, data: &[u8]) -> Vec<u8> {
    entry(hdr(name, b'0', 0o644, data.len()), data)
}

fn dir(name: &str) -> Vec<u8> {
    entry(hdr(name, b'5', 0o755, 0), &[])
}

/// Entries followed by the end-of-archive marker.
fn tar(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut v = parts.concat();
    v.resize(v.len() + 2 * BLOCK, 0);
    v
}

fn err(bytes: &[u8]) -> String {
    match read(bytes) {
        Ok(a) => panic!("accepted: {:?}", a.entries),
        Err(e) => e.to_string(),
    }
}

fn assert_refused(bytes: &[u8], needles: &[&str]) {
    let msg = err(bytes);
    for n in needles {
        assert!(msg.contains(n), "{msg:?} lacks {n:?}");
    }
}

/// Counts how many bytes the reader pulled.
struct Counting<'a> {
    inner: &'a [u8],
    taken: usize,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner[self.taken..].len().min(buf.len()).min(100);
        buf[..n].copy_from_slice(&self.inner[self.taken..self.taken + n]);
        self.taken += n;
        Ok(n)
    }
}

#[test]
fn reads_exactly_up_to_the_end_marker() {
    let mut bytes = tar(&[file("a", b"hello"), dir("d")]);
    let len = bytes.len();
    bytes.extend_from_slice(&[0xAA; 4096]);
    let mut r = Counting {
        inner: &bytes,
        taken: 0,
    };
    let a = read(&mut r).unwrap();
    assert_eq!(a.len, len);
    assert_eq!(r.taken, len, "nothing after the marker is read");
    assert_eq!(a.entries[0].data, b"hello");
    assert_eq!(a.entries[1].kind, EntryKind::Dir);
    assert_eq!(a.entries[1].mode, 0o755);
}

#[test]
fn an_archive_of_only_the_marker_is_empty() {
    let a = read(&[0u8; 2 * BLOCK][..]).unwrap();
    assert!(a.entries.is_empty());
    assert_eq!(a.len, 2 * BLOCK);
    assert!(!a.has_magic_entry());
}

#[test]
fn end_marker_rules() {
    assert_refused(&[], &["byte 0", "no end-of-archive marker"]);
    let mut one_zero = file("a", b"x");
    one_zero.extend_from_slice(&[0; BLOCK]);
    assert_refused(
        &one_zero,
        &["byte 1536", "second block of the end-of-archive"],
    );
    let mut hidden = file("a", b"x");
    hidden.extend_from_slice(&[0; BLOCK]);
    hidden.extend(tar(&[file("b", b"y")]));
    assert_refused(
        &hidden,
        &["zero block at byte 1024 is followed by a non-zero block"],
    );
    assert_refused(&file("a", b"x"), &["byte 1024", "no end-of-archive marker"]);
}

#[test]
fn magic_entry_detection() {
    let m = std::str::from_utf8(MAGIC).unwrap();
    assert!(read(&tar(&[file(m, MAGIC)])[..]).unwrap().has_magic_entry());
    for bytes in [
        tar(&[file("x", b"y"), file(m, MAGIC)]),
        tar(&[file(m, b"boot2docker, please format-mE")]),
        tar(&[file(&format!("./{m}x"), MAGIC)]),
        tar(&[dir(m)]),
    ] {
        assert!(!read(&bytes[..]).unwrap().has_magic_entry());
    }
    // A leading "./" is stripped, so this is still the magic entry.
    assert!(read(&tar(&[file(&format!("./{m}"), MAGIC)])[..])
        .unwrap()
        .has_magic_entry());
}

#[test]
fn paths_are_normalised() {
    let a = read(
        &tar(&[
            dir("./"),
            dir("./.ssh/"),
            file("././.ssh/authorized_keys", b"k"),
            entry(hdr("v7dir/", 0, 0o755, 0), &[]),
            entry(hdr("oldfile", 0, 0o644, 1), b"z"),
        ])[..],
    )
    .unwrap();
    let got: Vec<_> = a
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.kind))
        .collect();
    assert_eq!(
        got,
        [
            (".ssh", EntryKind::Dir),
            (".ssh/authorized_keys", EntryKind::File),
            ("v7dir", EntryKind::Dir),
            ("oldfile", EntryKind::File),
        ]
    );
}

#[test]
fn prefix_field_is_joined_with_a_slash() {
    let b = set(hdr("authorized_keys", b'0', 0o600, 1), 345, b"deep/.ssh");
    let a = read(&tar(&[entry(b, b"k")])[..]).unwrap();
    assert_eq!(a.entries[0].path, "deep/.ssh/authorized_keys");
}

#[test]
fn gnu_and_v7_headers_are_accepted() {
    let gnu = set(hdr("g", b'0', 0o644, 1), 257, b"ustar  \0");
    // In GNU headers bytes 345.. are timestamps, not a prefix.
    let gnu = set(gnu, 345, b"14570712345\0");
    let mut v7 = hdr("v", b'0', 0o644, 1);
    v7[257..265].fill(0);
    reseal(&mut v7);
    let a = read(&tar(&[entry(gnu, b"1"), entry(v7, b"2")])[..]).unwrap();
    assert_eq!(a.entries[0].path, "g");
    assert_eq!(a.entries[1].path, "v");
    assert_refused(
        &tar(&[entry(
            set(hdr("x", b'0', 0o644, 0), 257, b"ustar\0 \0"),
            &[],
        )]),
        &["unknown header format"],
    );
}

#[test]
fn numeric_fields_allow_space_padding() {
    let b = set(hdr("f", b'0', 0, 3), 124, b"         3 \0");
    let b = set(b, 100, b"  644 \0\0");
    let a = read(&tar(&[entry(b, b"abc")])[..]).unwrap();
    assert_eq!(a.entries[0].data, b"abc");
    assert_eq!(a.entries[0].mode, 0o644);
}

#[test]
fn modes_are_masked() {
    let a = read(
        &tar(&[
            entry(hdr("suid", b'0', 0o4755, 0), &[]),
            entry(hdr("typebits", b'0', 0o100_644, 0), &[]),
            entry(hdr("sticky", b'5', 0o1777, 0), &[]),
        ])[..],
    )
    .unwrap();
    let modes: Vec<_> = a.entries.iter().map(|e| e.mode).collect();
    assert_eq!(modes, [0o755, 0o644, 0o777]);
}

#[test]
fn signed_checksums_are_accepted() {
    let mut b = set(hdr("s", b'0', 0o644, 0), 265, &[0xff; 8]);
    let (_, signed) = sums(&b);
    b[148..156].copy_from_slice(format!("{signed:06o}\0 ").as_bytes());
    assert_eq!(
        read(&tar(&[entry(b, &[])])[..]).unwrap().entries[0].path,
        "s"
    );
}

#[test]
fn bad_checksums_are_refused() {
    for delta in [1i64, -1] {
        let mut b = hdr("c", b'0', 0o644, 0);
        let (sum, _) = sums(&b);
        let wrong = (sum as i64 + delta) as u64;
        b[148..156].copy_from_slice(format!("{wrong:06o}\0 ").as_bytes());
        assert_refused(
            &tar(&[entry(b, &[])]),
            &["entry #0 at byte 0", "bad header checksum"],
        );
    }
    let mut b = hdr("c", b'0', 0o644, 0);
    b[148..156].copy_from_slice(b"01x345\0 ");
    assert_refused(
        &tar(&[entry(b, &[])]),
        &["not a valid tar header", "checksum field `01x345`"],
    );
}

#[test]
fn unsafe_paths_are_refused() {
    for (name, why) in [
        ("/etc/passwd", "absolute path"),
        ("../escape", "'..' path component"),
        (".ssh/../../escape", "'..' path component"),
        ("a/..", "'..' path component"),
        ("a//b", "empty path component"),
        ("a/./b", "'.' path component"),
        ("bad\nname", "control character"),
        ("", "empty path"),
    ] {
        assert_refused(&tar(&[file(name, b"x")]), &[why]);
    }
    let mut b = hdr("", b'0', 0o644, 0);
    b[..3].copy_from_slice(&[b'a', 0xff, b'b']);
    reseal(&mut b);
    assert_refused(&tar(&[entry(b, &[])]), &["not valid UTF-8"]);
    assert_refused(&tar(&[file("dir/", b"x")]), &["ends with '/'"]);
}

#[test]
fn links_devices_fifos_and_extension_headers_are_refused() {
    for (flag, why) in [
        (b'1', "hard links"),
        (b'2', "symbolic links"),
        (b'3', "character devices"),
        (b'4', "block devices"),
        (b'6', "fifos"),
        (b'7', "contiguous"),
        (b'x', "pax extended headers"),
        (b'g', "pax global headers"),
        (b'L', "GNU long name"),
        (b'K', "GNU long name/link"),
        (b'S', "sparse"),
        (b'V', "only regular files"),
    ] {
        let name = format!("t{}", char::from(flag));
        let mut e = hdr(&name, flag, 0o644, 0);
        if flag == b'2' {
            e = set(e, 157, b"/etc/shadow");
        }
        let bytes = tar(&[file("ok", b"1"), entry(e, &[])]);
        assert_refused(
            &bytes,
            &["entry #1 at byte 1024", &format!("`{name}`"), why],
        );
    }
}

#[test]
fn bad_numeric_fields_are_refused() {
    for (at, val, field) in [
        (100, &b"00007a0\0"[..], "mode field"),
        (108, b"-000001\0", "uid field"),
        (116, b"00 0001\0", "gid field"),
        (124, b"0000000001x\0", "size field"),
        (136, b"1457071234\x01\0", "mtime field"),
        (329, b"000000z\0", "devmajor field"),
        (337, b"0000009\0", "devminor field"),
    ] {
        let b = set(hdr("n", b'0', 0o644, 0), at, val);
        assert_refused(&tar(&[entry(b, &[])]), &["`n`", field]);
    }
    let b = set(
        hdr("n", b'0', 0o644, 0),
        124,
        &[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5],
    );
    assert_refused(&tar(&[entry(b, &[])]), &["size field", "base-256"]);
}

#[test]
fn sizes_over_the_caps_are_refused_before_reading_data() {
    let huge = set(hdr("huge", b'0', 0o644, 0), 124, b"77777777777\0");
    assert_refused(&tar(&[entry(huge, &[])]), &["`huge`", "per-file limit"]);
    let over = hdr("over", b'0', 0o644, MAX_FILE + 1);
    assert_refused(&over, &["`over`", "size 262145", "per-file limit"]);
    let d = hdr("d", b'5', 0o755, 10);
    assert_refused(
        &tar(&[entry(d, b"0123456789")]),
        &["directory with 10 bytes"],
    );
}

#[test]
fn truncated_input_is_refused() {
    let whole = tar(&[file("a", &[7; 700])]);
    assert_refused(&whole[..300], &["ends 300 bytes into a header"]);
    assert_refused(&whole[..BLOCK + 100], &["`a`", "100 of 700 data bytes"]);
    assert_refused(&whole[..BLOCK + 800], &["`a`", "in the padding"]);
}

#[test]
fn duplicates_and_file_dir_clashes_are_refused() {
    assert_refused(
        &tar(&[file("a", b"1"), file("a", b"2")]),
        &["entry #1", "duplicate"],
    );
    assert_refused(&tar(&[dir("a"), dir("./a/")]), &["duplicate"]);
    assert_refused(
        &tar(&[file("a", b"1"), file("a/b", b"2")]),
        &["`a/b`", "parent `a` is a regular file"],
    );
    assert_refused(
        &tar(&[file("a/b", b"1"), file("a", b"2")]),
        &["`a`", "earlier entries have a directory"],
    );
    // An explicit directory after an implied one is fine.
    assert!(read(&tar(&[file("a/b", b"1"), dir("a")])[..]).is_ok());
}

/// Files of `blocks` data blocks each, named f0, f1, ...
fn files_of_blocks(blocks: &[usize]) -> Vec<Vec<u8>> {
    blocks
        .iter()
        .enumerate()
        .map(|(i, &n)| file(&format!("f{i}"), &vec![1u8; n * BLOCK]))
        .collect()
}

#[test]
fn an_archive_of_exactly_max_archive_bytes_is_accepted() {
    // 3 * (1 + 512) + (1 + 506) + 2 marker blocks = 2048 blocks = 1 MiB.
    let bytes = tar(&files_of_blocks(&[512, 512, 512, 506]));
    assert_eq!(bytes.len(), MAX_ARCHIVE);
    assert_eq!(read(&bytes[..]).unwrap().len, MAX_ARCHIVE);
}

#[test]
fn an_archive_one_block_over_max_archive_is_refused() {
    let bytes = tar(&files_of_blocks(&[512, 512, 512, 507]));
    assert_eq!(bytes.len(), MAX_ARCHIVE + BLOCK);
    assert_refused(
        &bytes,
        &["entry #3", "`f3`", "no room for the end-of-archive marker"],
    );
}

#[test]
fn input_without_a_marker_in_the_first_mib_is_refused_after_at_most_a_mib() {
    let mut bytes: Vec<u8> = (0..2048).flat_map(|i| dir(&format!("d{i}"))).collect();
    bytes.push(0);
    assert_eq!(bytes.len(), MAX_ARCHIVE + 1);
    let mut r = Counting {
        inner: &bytes,
        taken: 0,
    };
    let msg = read(&mut r).unwrap_err().to_string();
    assert!(msg.contains("within the first 1048576 bytes"), "{msg}");
    assert!(msg.contains("entry #2046"), "{msg}");
    assert!(r.taken <= MAX_ARCHIVE);
}

#[test]
fn errors_name_index_offset_and_path() {
    let bytes = tar(&[dir(".ssh"), file(".ssh/k", b"key"), file("../x", b"")]);
    let msg = err(&bytes);
    assert_eq!(
        msg,
        "userdata archive: entry #2 at byte 1536 (`../x`): '..' path component"
    );
}

/// Deterministic noise (xorshift64), standing in for whatever follows a
/// cut-off archive on a disk.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn a_truncated_archive_followed_by_random_bytes_is_not_a_tar_header() {
    let whole = tar(&[dir(".ssh"), file(".ssh/authorized_keys", b"key")]);
    let cut = &whole[..3 * BLOCK];
    let mut high_bit_in_checksum = 0;
    for seed in 0..64 {
        let mut bytes = cut.to_vec();
        bytes.extend(noise(seed, 4 * BLOCK));
        high_bit_in_checksum += usize::from(bytes[3 * BLOCK + 148] & 0x80 != 0);
        let msg = err(&bytes);
        assert!(
            msg.starts_with("userdata archive: entry #2 at byte 1536: not a valid tar header ("),
            "seed {seed}: {msg}"
        );
        assert!(!msg.contains("base-256"), "seed {seed}: {msg}");
    }
    // The seeds cover the case that used to be reported as a base-256 number.
    assert!(high_bit_in_checksum > 0);
}

#[test]
fn not_a_tar_header_says_why() {
    let mut b = hdr("c", b'0', 0o644, 0);
    b[148..156].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]);
    assert_refused(
        &tar(&[entry(b, &[])]),
        &[
            "entry #0 at byte 0: not a valid tar header",
            "checksum field `\\xde\\xad\\xbe\\xef` is not an octal number",
        ],
    );
    // A valid checksum but bytes no tar writer produces in the magic field.
    let b = set(hdr("m", b'0', 0o644, 0), 257, &[0xff; 8]);
    assert_refused(
        &tar(&[entry(b, &[])]),
        &["unknown header format (magic `\\xff\\xff\\xff\\xff\\xff\\xff`"],
    );
}
