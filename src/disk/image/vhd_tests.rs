use super::*;
use crate::disk::image::open_reader;
use std::io::{Cursor, SeekFrom};

fn open_bytes(bytes: Vec<u8>) -> Result<DiskImage, ImageError> {
    let len = bytes.len() as u64;
    open_reader(Cursor::new(bytes), len, Path::new("t.vhd"))
}

#[test]
fn geometry_follows_the_spec() {
    // 1 GiB -> 2080/16/63 as in the specification's worked tables.
    assert_eq!(
        chs(2 << 20),
        Chs {
            cylinders: 2080,
            heads: 16,
            sectors: 63
        }
    );
    // Small disks use 17 sectors per track and at least 4 heads.
    assert_eq!(
        chs(20480),
        Chs {
            cylinders: 301,
            heads: 4,
            sectors: 17
        }
    );
    assert_eq!(chs(u64::MAX).total(), MAX_CHS_SECTORS);
}

#[test]
fn sizes_round_up_to_the_geometry() {
    // qemu-img create -f vpc 1G reports 1073995776 bytes.
    assert_eq!(effective_size(1 << 30).unwrap(), 1_073_995_776);
    for mib in [1u64, 3, 64, 100, 1000, 4096, 100_000, 130_000] {
        let s = effective_size(mib << 20).unwrap();
        assert!(s >= mib << 20, "{mib}");
        let g = chs(s / 512);
        assert!(
            g.total() * 512 == s || g.total() == MAX_CHS_SECTORS,
            "{mib}"
        );
    }
    assert_eq!(effective_size(2040 << 30).unwrap(), 2040 << 30);
    assert!(effective_size((2040 << 30) + 1)
        .unwrap_err()
        .to_string()
        .contains("2040 GiB"));
}

#[test]
fn roundtrip_small_image() {
    let size = effective_size(16 << 20).unwrap();
    let head: Vec<u8> = (0..(3 << 20) as u32).map(|i| (i % 241) as u8 + 1).collect();
    let l = layout(size, &head, 1_700_000_000).unwrap();
    let mut img = open_bytes(l.to_vec()).unwrap();
    assert_eq!(img.format, ImageFormat::Vhd);
    assert_eq!(img.virtual_size, size);
    let mut all = Vec::new();
    img.reader.read_to_end(&mut all).unwrap();
    assert_eq!(all.len() as u64, size);
    assert_eq!(&all[..head.len()], &head[..]);
    assert!(is_zero(&all[head.len()..]));
}

#[test]
fn footer_fields_and_checksums() {
    let l = layout(2040 << 30, b"x", VHD_EPOCH + 10).unwrap();
    let v0 = &l.writes[0].1;
    assert!(valid_footer(v0));
    assert_eq!(be32(v0, 24), 10);
    assert_eq!(&v0[28..32], b"b2d ");
    assert_eq!(virtual_size(v0), 2040 << 30);
    // Leading zero bytes of BAT entry 0 are trimmed; the table ends exactly.
    let bat = l
        .writes
        .iter()
        .find(|(o, _)| (BAT_OFFSET..BAT_OFFSET + 4).contains(o))
        .unwrap();
    assert_eq!(bat.0 + bat.1.len() as u64, BAT_OFFSET + 1_044_480 * 4);
    let last = l.writes.iter().find(|(o, _)| *o + 512 == l.len).unwrap();
    assert_eq!(&last.1, v0);
}

#[test]
fn qemu_size_rule_for_foreign_creators() {
    let mut f = footer(effective_size(1 << 30).unwrap(), 0);
    put_be64(&mut f, 48, 1 << 30); // size disagrees with the geometry
    assert_eq!(virtual_size(&f), 1_073_995_776); // unknown creator: CHS
    f[28..32].copy_from_slice(b"win ");
    assert_eq!(virtual_size(&f), 1 << 30); // Hyper-V: the size field
}

fn corrupt(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut v = layout(effective_size(8 << 20).unwrap(), b"abc", 0)
        .unwrap()
        .to_vec();
    f(&mut v);
    match open_bytes(v) {
        Ok(mut img) => {
            let mut b = vec![0u8; 512];
            img.reader.read_exact(&mut b).unwrap_err().to_string()
        }
        Err(e) => e.to_string(),
    }
}

fn refooter(v: &mut [u8], at: usize, edit: impl Fn(&mut [u8])) {
    let f = &mut v[at..at + 512];
    edit(f);
    let c = checksum(f, 64);
    put_be32(f, 64, c);
}

fn both_footers(v: &mut [u8], edit: impl Fn(&mut [u8])) {
    let end = v.len() - 512;
    refooter(v, 0, &edit);
    refooter(v, end, &edit);
}

#[test]
fn malformed_images_are_refused_with_the_field_name() {
    let e = open_bytes(b"conectix".to_vec()).unwrap_err().to_string();
    assert!(
        e.contains("t.vhd") && e.contains("vhd footer truncated in field features"),
        "{e}"
    );
    let e = corrupt(|v| {
        let end = v.len() - 400;
        v[end] ^= 1;
        v[100] ^= 1;
    });
    assert!(e.contains("footer checksum"), "{e}");
    let e = corrupt(|v| both_footers(v, |f| put_be32(f, 60, DISK_DIFFERENCING)));
    assert!(e.contains("disk_type") && e.contains("backing"), "{e}");
    let e = corrupt(|v| both_footers(v, |f| put_be64(f, 16, 1 << 40)));
    assert!(e.contains("data_offset"), "{e}");
    let mut v = layout(effective_size(8 << 20).unwrap(), b"abc", 0)
        .unwrap()
        .to_vec();
    both_footers(&mut v, |f| f[28..32].copy_from_slice(b"win "));
    assert!(open_bytes(v).is_ok(), "a Hyper-V creator is fine");
    let e = corrupt(|v| {
        both_footers(v, |f| {
            f[28..32].copy_from_slice(b"win ");
            put_be64(f, 48, u64::MAX - 511);
        })
    });
    assert!(e.contains("current_size"), "{e}");
    let e = corrupt(|v| v[512] = b'X');
    assert!(e.contains("cookie"), "{e}");
    let e = corrupt(|v| v[512 + 100] = 1);
    assert!(e.contains("dynamic header checksum"), "{e}");
    let dyn_edit = |v: &mut Vec<u8>, at: usize, val: u64| {
        let d = &mut v[512..1536];
        match at {
            16 => put_be64(d, 16, val),
            _ => put_be32(d, at, val as u32),
        }
        let c = checksum(d, 36);
        put_be32(d, 36, c);
    };
    let e = corrupt(|v| dyn_edit(v, 16, 1 << 40));
    assert!(e.contains("table_offset"), "{e}");
    let e = corrupt(|v| dyn_edit(v, 28, 1));
    assert!(e.contains("max_table_entries"), "{e}");
    let e = corrupt(|v| dyn_edit(v, 32, 1000));
    assert!(e.contains("block_size"), "{e}");
    // BAT entry 0 pointing past the end of the file.
    let e = corrupt(|v| put_be32(v, BAT_OFFSET as usize, 0x7fff_0000));
    assert!(e.contains("past the end"), "{e}");
}

#[test]
fn footer_copy_at_zero_is_used_when_the_end_is_damaged() {
    let mut v = layout(effective_size(8 << 20).unwrap(), b"abc", 0)
        .unwrap()
        .to_vec();
    let end = v.len() - 512;
    v[end] = 0;
    let mut img = open_bytes(v).unwrap();
    let mut b = [0u8; 3];
    img.reader.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"abc");
}

#[test]
fn fixed_disks_read_straight_through() {
    let size = effective_size(1 << 20).unwrap();
    let mut v = vec![5u8; size as usize];
    let mut f = footer(size, 0);
    put_be32(&mut f, 60, DISK_FIXED);
    let c = checksum(&f, 64);
    put_be32(&mut f, 64, c);
    v.extend_from_slice(&f);
    let mut img = open_bytes(v).unwrap();
    assert_eq!(img.virtual_size, size);
    img.reader.seek(SeekFrom::End(-2)).unwrap();
    let mut all = Vec::new();
    img.reader.read_to_end(&mut all).unwrap();
    assert_eq!(all, vec![5, 5]);
}
