use super::*;
use crate::disk::image::open_reader;
use std::io::{Cursor, SeekFrom};

fn open_bytes(bytes: Vec<u8>) -> Result<DiskImage, ImageError> {
    let len = bytes.len() as u64;
    open_reader(Cursor::new(bytes), len, Path::new("t.qcow2"))
}

fn small_image(size: u64, head: &[u8]) -> Vec<u8> {
    layout(size, head).unwrap().to_vec()
}

#[test]
fn roundtrip_small_image() {
    let head: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8 + 1).collect();
    let bytes = small_image(8 << 20, &head);
    let mut img = open_bytes(bytes).unwrap();
    assert_eq!(img.format, ImageFormat::Qcow2);
    assert_eq!(img.virtual_size, 8 << 20);
    let mut all = Vec::new();
    img.reader.read_to_end(&mut all).unwrap();
    assert_eq!(all.len(), 8 << 20);
    assert_eq!(&all[..head.len()], &head[..]);
    assert!(is_zero(&all[head.len()..]));
}

#[test]
fn layout_clusters_and_refcounts_agree() {
    let l = layout(2 << 40, b"userdata").unwrap();
    // header, reftable, refblock, L1 (32 KiB -> 1 cluster), L2, data.
    assert_eq!(l.len, 6 * CLUSTER);
    let written: usize = l.writes.iter().map(|(_, b)| b.len()).sum();
    assert!(written < 200 * 1024, "{written}");
    let v = l.to_vec();
    let h = parse_header(&v[..104], l.len, Path::new("x")).unwrap();
    assert_eq!(h.l1_size, 4096);
    assert_eq!(h.l1_offset, 3 * CLUSTER);
    for i in 0..6 {
        let at = (2 * CLUSTER + i * 2) as usize;
        assert_eq!(u16::from_be_bytes([v[at], v[at + 1]]), 1, "cluster {i}");
    }
    assert_eq!(be64(&v, (CLUSTER + 8) as usize), 0, "one refcount block");
}

#[test]
fn zero_head_allocates_no_data() {
    let l = layout(1 << 30, &[0u8; 5000]).unwrap();
    assert_eq!(l.len, 4 * CLUSTER);
    let mut img = open_bytes(l.to_vec()).unwrap();
    let mut b = vec![1u8; 4096];
    img.reader.read_exact(&mut b).unwrap();
    assert!(is_zero(&b));
}

#[test]
fn head_spanning_an_l2_boundary() {
    // A head longer than 512 MiB would need a second L2; use a sparse head
    // vector only in the interesting clusters to keep memory small.
    let mut head = vec![0u8; (L2_ENTRIES * CLUSTER + 10) as usize];
    head[0] = 1;
    let last = head.len() - 1;
    head[last] = 2;
    let l = layout(1 << 30, &head).unwrap();
    // header, rt, rb, L1, 2 x L2, 2 x data
    assert_eq!(l.len, 8 * CLUSTER);
    let mut img = open_bytes(l.to_vec()).unwrap();
    let mut b = [0u8; 1];
    img.reader.seek(SeekFrom::Start(last as u64)).unwrap();
    img.reader.read_exact(&mut b).unwrap();
    assert_eq!(b[0], 2);
    img.reader.seek(SeekFrom::Start(last as u64 - 1)).unwrap();
    img.reader.read_exact(&mut b).unwrap();
    assert_eq!(b[0], 0);
}

#[test]
fn size_limits() {
    assert_eq!(effective_size(1).unwrap(), 512);
    assert!(effective_size(u64::MAX / 2)
        .unwrap_err()
        .to_string()
        .contains("qcow2 limit"));
}

fn corrupt(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut v = small_image(1 << 20, b"abc");
    f(&mut v);
    match open_bytes(v) {
        Ok(mut img) => {
            let mut b = vec![0u8; 4096];
            img.reader.read_exact(&mut b).unwrap_err().to_string()
        }
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_headers_are_refused_with_the_field_name() {
    let e = open_bytes(MAGIC.to_vec()).unwrap_err().to_string();
    assert!(e.contains("truncated") && e.contains("t.qcow2"), "{e}");
    let e = corrupt(|v| put_be32(v, 4, 9));
    assert!(e.contains("version"), "{e}");
    let e = corrupt(|v| put_be32(v, 20, 40));
    assert!(e.contains("cluster_bits"), "{e}");
    let e = corrupt(|v| put_be64(v, 8, 4096));
    assert!(e.contains("backing_file_offset"), "{e}");
    let e = corrupt(|v| put_be32(v, 32, 1));
    assert!(e.contains("crypt_method"), "{e}");
    let e = corrupt(|v| put_be64(v, 72, 1 << 4));
    assert!(e.contains("incompatible_features"), "{e}");
    let e = corrupt(|v| put_be64(v, 40, 1 << 40));
    assert!(e.contains("l1_table_offset"), "{e}");
    let e = corrupt(|v| put_be32(v, 36, u32::MAX));
    assert!(e.contains("l1_size"), "{e}");
    let e = corrupt(|v| put_be64(v, 24, u64::MAX));
    assert!(e.contains("qcow2 header field size"), "{e}");
    let e = corrupt(|v| put_be64(v, 24, 1 << 40));
    assert!(e.contains("l1_size"), "{e}");
    let e = corrupt(|v| put_be32(v, 100, 50));
    assert!(e.contains("header_length"), "{e}");
}

#[test]
fn hostile_table_entries_fail_reads_not_the_process() {
    // L1 entry 0 -> L2 past the end of the file.
    let l1 = (3 * CLUSTER) as usize;
    let e = corrupt(|v| put_be64(v, l1, (1 << 40) | COPIED));
    assert!(e.contains("past the end") && e.contains("t.qcow2"), "{e}");
    let e = corrupt(|v| put_be64(v, l1, 12345));
    assert!(e.contains("aligned"), "{e}");
    // L2 entry 0 -> compressed, then -> data past EOF.
    let l2 = (4 * CLUSTER) as usize;
    let e = corrupt(|v| put_be64(v, l2, COMPRESSED | (5 * CLUSTER)));
    assert!(e.contains("compressed"), "{e}");
    let e = corrupt(|v| put_be64(v, l2, COPIED | (1 << 40)));
    assert!(e.contains("past the end"), "{e}");
    // v3 "reads as zero" flag is honoured.
    let mut v = small_image(1 << 20, b"abc");
    let old = be64(&v, l2);
    put_be64(&mut v, l2, old | 1);
    let mut img = open_bytes(v).unwrap();
    let mut b = [9u8; 3];
    img.reader.read_exact(&mut b).unwrap();
    assert_eq!(b, [0, 0, 0]);
}
