//! Unit tests of the builder: header bytes, layout, validation, limits.

use super::*;
use crate::disk::magic::MAGIC;
use tar::Header;

const KEY: &[u8] =
    b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBtestkeytestkeytestkeytestkeytestkeytestkey user@host\n";

fn ext(name: &str, mode: u32, data: &[u8]) -> Extension {
    Extension {
        name: name.into(),
        mode,
        data: data.to_vec(),
    }
}

fn block(bytes: &[u8], n: usize) -> &[u8] {
    &bytes[n * BLOCK..(n + 1) * BLOCK]
}

fn build_err(exts: &[Extension]) -> String {
    build(KEY, exts, Compat::B2d).unwrap_err().to_string()
}

#[test]
fn docker_machine_layout_is_four_entries_and_the_end_marker() {
    let a = build(KEY, &[], Compat::DockerMachine).unwrap();
    // magic header + data, .ssh header, two key headers + data, end marker.
    assert_eq!(a.len(), 9 * BLOCK);
    assert!(a.starts_with(MAGIC), "the magic must be at byte 0");
    assert_eq!(&block(&a, 1)[..MAGIC.len()], MAGIC);
    assert!(block(&a, 1)[MAGIC.len()..].iter().all(|&b| b == 0));
    assert_eq!(&block(&a, 2)[..5], b".ssh\0");
    assert_eq!(&block(&a, 3)[..21], b".ssh/authorized_keys\0");
    assert_eq!(&block(&a, 4)[..KEY.len()], KEY);
    assert_eq!(&block(&a, 5)[..22], b".ssh/authorized_keys2\0");
    assert_eq!(&block(&a, 6)[..KEY.len()], KEY);
    assert!(a[7 * BLOCK..].iter().all(|&b| b == 0));
}

#[test]
fn headers_are_encoded_like_go_archive_tar() {
    let a = build(KEY, &[], Compat::DockerMachine).unwrap();
    let magic_hdr: &[u8; BLOCK] = block(&a, 0).try_into().unwrap();
    // Field views from the `tar` crate, so the offsets are not ours.
    let ustar = Header::from_byte_slice(magic_hdr).as_ustar().unwrap();
    assert_eq!(&ustar.mode, b"0000000\0");
    assert_eq!(&ustar.uid, b"0000000\0");
    assert_eq!(&ustar.gid, b"0000000\0");
    assert_eq!(&ustar.size, b"00000000035\0");
    assert_eq!(&ustar.mtime, b"00000000000\0");
    assert_eq!(ustar.typeflag, [b'0']);
    assert_eq!(&ustar.magic, b"ustar\0");
    assert_eq!(&ustar.version, b"00");
    assert_eq!(&ustar.dev_major, b"0000000\0");
    assert_eq!(&ustar.dev_minor, b"0000000\0");
    // linkname, uname, gname and prefix are empty.
    assert!(ustar.linkname.iter().all(|&b| b == 0));
    assert!(ustar.uname.iter().chain(&ustar.gname).all(|&b| b == 0));
    assert!(ustar.prefix.iter().chain(&ustar.pad).all(|&b| b == 0));
    assert!(magic_hdr[157..257].iter().all(|&b| b == 0));
    assert!(magic_hdr[265..329].iter().all(|&b| b == 0));
    assert!(magic_hdr[345..].iter().all(|&b| b == 0));
    // Checksum: six octal digits, NUL, space, matching the unsigned sum.
    let ck = &ustar.cksum;
    assert_eq!(&ck[6..], b"\0 ");
    let digits = std::str::from_utf8(&ck[..6]).unwrap();
    let sum = u64::from_str_radix(digits, 8).unwrap();
    let (unsigned, _) = super::read::checksums(Header::from_byte_slice(magic_hdr));
    assert_eq!(sum, unsigned);
    // An independent sum: every byte, the checksum field as eight spaces.
    let by_hand: u64 = (magic_hdr[..148].iter().chain(&magic_hdr[156..]))
        .map(|&b| u64::from(b))
        .sum::<u64>()
        + 8 * 32;
    assert_eq!(sum, by_hand);

    let ssh = Header::from_byte_slice(block(&a, 2)).as_ustar().unwrap();
    assert_eq!(ssh.typeflag, [b'5']);
    assert_eq!(&ssh.mode, b"0000700\0");
    assert_eq!(&ssh.size, b"00000000000\0");
    let keys = Header::from_byte_slice(block(&a, 3)).as_ustar().unwrap();
    assert_eq!(keys.typeflag, [b'0']);
    assert_eq!(&keys.mode, b"0000644\0");
    assert_eq!(&keys.size, format!("{:011o}\0", KEY.len()).as_bytes());
}

#[test]
fn both_layouts_read_back() {
    let dm = read(&build(KEY, &[], Compat::DockerMachine).unwrap()[..]).unwrap();
    let paths: Vec<_> = dm.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "boot2docker, please format-me",
            ".ssh",
            ".ssh/authorized_keys",
            ".ssh/authorized_keys2"
        ]
    );
    assert!(dm.has_magic_entry());
    assert_eq!(dm.len, 9 * BLOCK);
    assert!(dm.b2d_files().is_empty());

    let exts = [
        ext("hostname", 0o644, b"box\n"),
        ext("ca.pem", 0o4755, b"PEM"),
    ];
    let b2d = read(&build(KEY, &exts, Compat::B2d).unwrap()[..]).unwrap();
    assert_eq!(&b2d.entries[..4], &dm.entries[..]);
    assert_eq!(b2d.entries[4].path, ".b2d");
    assert_eq!(b2d.entries[4].kind, EntryKind::Dir);
    assert_eq!(b2d.entries[4].mode, 0o700);
    let files = b2d.b2d_files();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].path, ".b2d/hostname");
    assert_eq!(files[0].data, b"box\n");
    assert_eq!(files[1].path, ".b2d/ca.pem");
    assert_eq!(files[1].mode, 0o755, "setuid is dropped");
}

#[test]
fn b2d_layout_without_extensions_still_has_the_b2d_dir() {
    let a = read(&build(KEY, &[], Compat::B2d).unwrap()[..]).unwrap();
    assert_eq!(a.entries.len(), 5);
    assert_eq!(a.entries[4].path, ".b2d");
}

#[test]
fn keys_are_written_verbatim() {
    let raw = b"# comment\n\nssh-rsa AAAA one\r\n  ssh-ed25519 BBBB two  \n".to_vec();
    let a = read(&build(&raw, &[], Compat::DockerMachine).unwrap()[..]).unwrap();
    assert_eq!(a.file(".ssh/authorized_keys").unwrap().data, raw);
    assert_eq!(a.file(".ssh/authorized_keys2").unwrap().data, raw);
    assert_eq!(
        a.authorized_keys(),
        ["ssh-rsa AAAA one", "ssh-ed25519 BBBB two"]
    );
    let empty = read(&build(b"", &[], Compat::DockerMachine).unwrap()[..]).unwrap();
    assert!(empty.authorized_keys().is_empty());
}

#[test]
fn a_100_byte_extension_name_goes_through_the_prefix_field() {
    let name = "n".repeat(100);
    let bytes = build(KEY, &[ext(&name, 0o600, b"x")], Compat::B2d).unwrap();
    let hdr = Header::from_byte_slice(block(&bytes, 8))
        .as_ustar()
        .unwrap();
    assert_eq!(&hdr.name, name.as_bytes());
    assert_eq!(&hdr.prefix[..5], b".b2d\0");
    let a = read(&bytes[..]).unwrap();
    assert_eq!(a.b2d_files()[0].path, format!(".b2d/{name}"));
}

#[test]
fn bad_extension_names_are_refused_by_name() {
    for (name, why) in [
        ("", "empty extension name"),
        ("a/b", "contains '/'"),
        ("..", "is not a file name"),
        (".", "is not a file name"),
        ("a\nb", "control character"),
    ] {
        let msg = build_err(&[ext(name, 0o600, b"")]);
        assert!(msg.contains(why), "{name:?}: {msg}");
        assert!(msg.contains(&format!("`.b2d/{name}`")), "{msg}");
    }
    let long = "x".repeat(101);
    let msg = build_err(&[ext(&long, 0o600, b"")]);
    assert!(msg.contains("101 bytes, the limit is 100"), "{msg}");
    let msg = build_err(&[ext("a", 0o600, b""), ext("a", 0o600, b"")]);
    assert!(msg.contains("`.b2d/a`") && msg.contains("twice"), "{msg}");
}

#[test]
fn docker_machine_compat_refuses_extensions() {
    let msg = build(KEY, &[ext("hostname", 0o644, b"x")], Compat::DockerMachine)
        .unwrap_err()
        .to_string();
    assert!(msg.contains(".b2d/hostname"), "{msg}");
}

#[test]
fn size_limits_are_enforced_when_building() {
    let big = vec![b'k'; MAX_FILE + 1];
    let msg = build(&big, &[], Compat::DockerMachine)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(".ssh/authorized_keys") && msg.contains("per-file"),
        "{msg}"
    );
    let chunk = vec![0u8; MAX_FILE];
    let exts: Vec<_> = (0..4)
        .map(|i| ext(&format!("f{i}"), 0o600, &chunk))
        .collect();
    let msg = build_err(&exts);
    assert!(
        msg.contains(".b2d/f3") && msg.contains("would exceed"),
        "{msg}"
    );
    // Just under the limit still builds and reads back.
    let exts: Vec<_> = (0..3)
        .map(|i| ext(&format!("f{i}"), 0o600, &chunk))
        .collect();
    let bytes = build(KEY, &exts, Compat::B2d).unwrap();
    assert!(bytes.len() <= MAX_ARCHIVE);
    assert_eq!(read(&bytes[..]).unwrap().b2d_files().len(), 3);
}
