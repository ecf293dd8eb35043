use super::*;
use crate::disk::image::open_reader;
use std::io::{Cursor, SeekFrom};

fn open_bytes(bytes: Vec<u8>) -> Result<DiskImage, ImageError> {
    let len = bytes.len() as u64;
    open_reader(Cursor::new(bytes), len, Path::new("t.vmdk"))
}

#[test]
fn roundtrip_small_image() {
    let head: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8 + 1).collect();
    let l = layout(64 << 20, &head, "t.vmdk").unwrap();
    let mut img = open_bytes(l.to_vec()).unwrap();
    assert_eq!(img.format, ImageFormat::Vmdk);
    assert_eq!(img.virtual_size, 64 << 20);
    let mut all = Vec::new();
    img.reader.read_to_end(&mut all).unwrap();
    assert_eq!(&all[..head.len()], &head[..]);
    assert!(is_zero(&all[head.len()..]));
    assert_eq!(all.len(), 64 << 20);
}

#[test]
fn layout_matches_the_documented_positions() {
    // 1 GiB: 16384 grains, 32 GTs, GD of 1 sector.
    let g = geometry(2 << 20);
    assert_eq!(
        (g.gts, g.rgd, g.rgt, g.gd, g.gt, g.overhead),
        (32, 21, 22, 150, 151, 384)
    );
    let l = layout(2 << 40, b"head", "big.vmdk").unwrap();
    let g = geometry(1 << 32);
    assert_eq!(g.gts, 65536);
    assert_eq!(l.len, (g.overhead + 128) * 512);
    let written: usize = l.writes.iter().map(|(_, b)| b.len()).sum();
    assert!(written < 600 * 1024, "{written}");
    let desc = &l.writes[1].1;
    let text = String::from_utf8_lossy(desc);
    assert!(text.contains("createType=\"monolithicSparse\""), "{text}");
    assert!(text.contains("RW 4294967296 SPARSE \"big.vmdk\""), "{text}");
    assert!(
        text.contains("ddb.geometry.cylinders = \"16383\""),
        "{text}"
    );
}

#[test]
fn sizes_round_to_the_grain() {
    assert_eq!(effective_size(1).unwrap(), 65536);
    assert_eq!(effective_size(65537).unwrap(), 131072);
    assert!(effective_size(65 << 40)
        .unwrap_err()
        .to_string()
        .contains("64 TiB"));
}

fn corrupt(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut v = layout(4 << 20, b"abc", "t.vmdk").unwrap().to_vec();
    f(&mut v);
    match open_bytes(v) {
        Ok(mut img) => {
            let mut b = vec![0u8; 512];
            img.reader.read_exact(&mut b).unwrap_err().to_string()
        }
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_headers_are_refused_with_the_field_name() {
    let e = open_bytes(b"KDMV\x01\0\0\0".to_vec())
        .unwrap_err()
        .to_string();
    assert!(e.contains("truncated") && e.contains("t.vmdk"), "{e}");
    let e = corrupt(|v| put_le32(v, 4, 7));
    assert!(e.contains("version"), "{e}");
    let e = corrupt(|v| put_le32(v, 8, FLAGS | FLAG_COMPRESSED));
    assert!(e.contains("streamOptimized"), "{e}");
    let e = corrupt(|v| put_le64(v, 12, u64::MAX));
    assert!(e.contains("capacity"), "{e}");
    let e = corrupt(|v| put_le64(v, 12, 1 << 50));
    assert!(
        e.contains("capacity") && e.contains("grain directory of"),
        "{e}"
    );
    let e = corrupt(|v| put_le64(v, 20, 100));
    assert!(e.contains("grainSize"), "{e}");
    let e = corrupt(|v| put_le32(v, 44, 0));
    assert!(e.contains("numGTEsPerGT"), "{e}");
    let e = corrupt(|v| put_le64(v, 56, u64::MAX));
    assert!(e.contains("gdOffset"), "{e}");
    let e = corrupt(|v| put_le64(v, 28, 1 << 40));
    assert!(e.contains("descriptorOffset"), "{e}");
    let e = corrupt(|v| {
        let d = 512 + v[512..].windows(9).position(|w| w == b"parentCID").unwrap();
        v[d + 10..d + 18].copy_from_slice(b"12345678");
    });
    assert!(e.contains("parentCID"), "{e}");
    // The descriptor's words reach the error escaped, not raw.
    let e = corrupt(|v| {
        let d = 512 + v[512..].windows(9).position(|w| w == b"parentCID").unwrap();
        v[d + 10..d + 18].copy_from_slice(b"\x1b]0;xy\x07\x9b");
    });
    assert!(e.contains(r"\x1b]0;xy\x07"), "{e}");
    assert!(!e.chars().any(crate::util::drives_terminal), "{e:?}");
}

#[test]
fn hostile_table_entries_fail_reads() {
    let g = geometry(8192);
    let gd = (g.gd * 512) as usize;
    let e = corrupt(|v| put_le32(v, gd, u32::MAX));
    assert!(
        e.contains("grain table") && e.contains("past the end"),
        "{e}"
    );
    let gt = (g.gt * 512) as usize;
    let e = corrupt(|v| put_le32(v, gt, u32::MAX));
    assert!(e.contains("past the end"), "{e}");
    // A zeroed-grain marker (1) reads as zeros.
    let mut v = layout(4 << 20, b"abc", "t.vmdk").unwrap().to_vec();
    put_le32(&mut v, gt, 1);
    let mut img = open_bytes(v).unwrap();
    let mut b = [7u8; 3];
    img.reader.read_exact(&mut b).unwrap();
    assert_eq!(b, [0, 0, 0]);
    img.reader.seek(SeekFrom::End(-1)).unwrap();
    img.reader.read_exact(&mut b[..1]).unwrap();
}
