//! Cross-checks of the native image writers and readers against qemu-img,
//! the independent implementation. These tests fail (never skip) when
//! qemu-img / qemu-io are missing.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};

use b2d::disk::image::{self, ImageFormat};

const TIB: u64 = 1 << 40;
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
const ALL: [ImageFormat; 4] = [
    ImageFormat::Raw,
    ImageFormat::Qcow2,
    ImageFormat::Vmdk,
    ImageFormat::Vhd,
];

/// `tool args` of qemu-utils (qemu-img, qemu-io), whatever its status.
fn run(tool: &str, args: &[&str]) -> Output {
    test_support::need(tool, "qemu-utils");
    test_support::output(Command::new(tool).args(args))
}

/// `tool args` of qemu-utils, which must succeed; returns stdout.
fn run_ok(tool: &str, args: &[&str]) -> String {
    test_support::need(tool, "qemu-utils");
    test_support::run(tool, args)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn info(p: &Path) -> serde_json::Value {
    serde_json::from_str(&run_ok("qemu-img", &["info", "--output=json", s(p)])).unwrap()
}

fn allocated(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().blocks() * 512
}

/// A head that is not all zeros anywhere and has a recognisable start.
fn head() -> Vec<u8> {
    let mut h = b"boot2docker, please format-me".to_vec();
    h.extend((0..5000u32).map(|i| (i % 199) as u8 + 1));
    h
}

fn big_size(f: ImageFormat) -> u64 {
    match f {
        ImageFormat::Vhd => 2040 * GIB,
        _ => 2 * TIB,
    }
}

/// MiB number `mib` of the virtual disk as qemu-img reads it.
fn qemu_dd(p: &Path, f: ImageFormat, mib: u64) -> Vec<u8> {
    let out = p.with_extension("dd");
    let _ = std::fs::remove_file(&out);
    run_ok(
        "qemu-img",
        &[
            "dd",
            "-f",
            f.qemu_name(),
            "-O",
            "raw",
            "bs=1M",
            "count=1",
            &format!("skip={mib}"),
            &format!("if={}", s(p)),
            &format!("of={}", s(&out)),
        ],
    );
    let b = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    b
}

fn read_range(p: &Path, off: u64, len: usize) -> Vec<u8> {
    let mut img = image::open(p).unwrap();
    img.reader.seek(SeekFrom::Start(off)).unwrap();
    let mut b = vec![0u8; len];
    img.reader.read_exact(&mut b).unwrap();
    b
}

#[test]
fn huge_images_are_sparse_and_qemu_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let head = head();
    for f in ALL {
        let p = dir.path().join(format!("big.{f}"));
        let size = big_size(f);
        image::create(&p, f, size, &head, false).unwrap();
        let alloc = allocated(&p);
        let limit = if f == ImageFormat::Vhd { 5 * MIB } else { MIB };
        assert!(alloc < limit, "{f}: {alloc} bytes allocated, limit {limit}");
        eprintln!(
            "{f}: {} bytes file, {alloc} bytes allocated",
            std::fs::metadata(&p).unwrap().len()
        );

        let i = info(&p);
        assert_eq!(i["format"], f.qemu_name(), "{f}: {i}");
        assert_eq!(i["virtual-size"], size, "{f}: {i}");
        let ours = image::open(&p).unwrap();
        assert_eq!(ours.format, f);
        assert_eq!(ours.virtual_size, size);
        assert_eq!(read_range(&p, 0, head.len()), head, "{f}");
        assert!(read_range(&p, size - 4096, 4096).iter().all(|&b| b == 0));

        if matches!(f, ImageFormat::Qcow2 | ImageFormat::Vmdk) {
            run_ok("qemu-img", &["check", s(&p)]);
        }
        // qemu's view of the first and last MiB.
        let mut want = head.clone();
        want.resize(MIB as usize, 0);
        assert_eq!(qemu_dd(&p, f, 0), want, "{f}: first MiB as qemu reads it");
        let last = size / MIB - 1;
        assert!(
            qemu_dd(&p, f, last).iter().all(|&b| b == 0),
            "{f}: last MiB"
        );
        // qemu's view of the whole disk equals a raw disk with the same head.
        // (Skipped for vmdk: qemu walks every grain and takes ~45 s at 2 TiB.)
        if matches!(f, ImageFormat::Qcow2 | ImageFormat::Vhd) {
            let r = dir.path().join(format!("big-{f}.raw"));
            image::create(&r, ImageFormat::Raw, size, &head, false).unwrap();
            run_ok(
                "qemu-img",
                &["compare", "-f", f.qemu_name(), "-F", "raw", s(&p), s(&r)],
            );
            std::fs::remove_file(&r).unwrap();
        }
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn vhd_check_is_unsupported_so_compare_is_used() {
    // Documents why the vhd branch above relies on `qemu-img compare`.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.vhd");
    image::create(&p, ImageFormat::Vhd, 64 * MIB, b"x", false).unwrap();
    let o = run("qemu-img", &["check", "-f", "vpc", s(&p)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() || err.contains("does not support checks"),
        "{err}"
    );
}

#[test]
fn small_images_convert_to_the_expected_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let head = head();
    for f in ALL {
        let p = dir.path().join(format!("small.{f}"));
        image::create(&p, f, 64 * MIB, &head, false).unwrap();
        let size = image::effective_size(f, 64 * MIB).unwrap();
        assert_eq!(info(&p)["virtual-size"], size, "{f}");
        let out = dir.path().join(format!("small-{f}.raw"));
        run_ok(
            "qemu-img",
            &["convert", "-f", f.qemu_name(), "-O", "raw", s(&p), s(&out)],
        );
        let got = std::fs::read(&out).unwrap();
        assert_eq!(got.len() as u64, size, "{f}");
        let mut want = head.clone();
        want.resize(MIB as usize, 0);
        assert_eq!(&got[..MIB as usize], &want[..], "{f}: first MiB");
        assert!(got[MIB as usize..].iter().all(|&b| b == 0), "{f}: tail");
        // Our own reader sees the same bytes.
        let mut ours = Vec::new();
        image::open(&p)
            .unwrap()
            .reader
            .read_to_end(&mut ours)
            .unwrap();
        assert!(ours == got, "{f}: our reader differs from qemu-img convert");
    }
}

#[test]
fn reads_images_written_by_qemu() {
    let dir = tempfile::tempdir().unwrap();
    for f in ALL {
        let fmt = f.qemu_name();
        let p = dir.path().join(format!("q.{f}"));
        run_ok("qemu-img", &["create", "-q", "-f", fmt, s(&p), "64M"]);
        run_ok(
            "qemu-io",
            &[
                "-f",
                fmt,
                "-c",
                "write -P 0xab 0 64k",
                "-c",
                "write -P 0xcd 5M 100k",
                s(&p),
            ],
        );
        let img = image::open(&p).unwrap();
        assert_eq!(img.format, f);
        assert_eq!(
            img.virtual_size,
            info(&p)["virtual-size"].as_u64().unwrap(),
            "{f}"
        );
        let got = read_range(&p, 0, 6 * MIB as usize);
        assert!(got[..65536].iter().all(|&b| b == 0xab), "{f}");
        assert!(got[65536..5 * MIB as usize].iter().all(|&b| b == 0), "{f}");
        let cd = 5 * MIB as usize..5 * MIB as usize + 102_400;
        assert!(got[cd.clone()].iter().all(|&b| b == 0xcd), "{f}");
        assert!(got[cd.end..].iter().all(|&b| b == 0), "{f}");
    }
}

#[test]
fn reads_qemu_conversions_of_known_content() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    // 40 MiB: some patterned MiBs, some zero ones, an odd tail.
    let mut data = vec![0u8; 40 * MIB as usize];
    for (i, b) in data.iter_mut().enumerate() {
        if (i / MIB as usize) % 3 != 1 {
            *b = (i % 251) as u8 ^ (i >> 20) as u8;
        }
    }
    std::fs::write(&src, &data).unwrap();
    for f in [ImageFormat::Qcow2, ImageFormat::Vmdk, ImageFormat::Vhd] {
        let p = dir.path().join(format!("conv.{f}"));
        run_ok(
            "qemu-img",
            &["convert", "-f", "raw", "-O", f.qemu_name(), s(&src), s(&p)],
        );
        let mut img = image::open(&p).unwrap();
        assert_eq!(
            img.virtual_size,
            info(&p)["virtual-size"].as_u64().unwrap(),
            "{f}"
        );
        let mut got = Vec::new();
        img.reader.read_to_end(&mut got).unwrap();
        assert!(got.len() >= data.len(), "{f}");
        assert!(got[..data.len()] == data[..], "{f}: content differs");
        assert!(got[data.len()..].iter().all(|&b| b == 0), "{f}");
    }
}

fn open_err(p: &Path) -> String {
    match image::open(p) {
        Ok(mut img) => {
            let mut b = Vec::new();
            img.reader.read_to_end(&mut b).unwrap_err().to_string()
        }
        Err(e) => e.to_string(),
    }
}

#[test]
fn unsupported_qemu_features_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    std::fs::write(&src, vec![0x5au8; 4 * MIB as usize]).unwrap();
    let d = |n: &str| dir.path().join(n);

    run_ok(
        "qemu-img",
        &[
            "convert",
            "-c",
            "-f",
            "raw",
            "-O",
            "qcow2",
            s(&src),
            s(&d("c.qcow2")),
        ],
    );
    let e = open_err(&d("c.qcow2"));
    assert!(e.contains("compressed") && e.contains("c.qcow2"), "{e}");

    let base = d("base.qcow2");
    run_ok("qemu-img", &["create", "-q", "-f", "qcow2", s(&base), "4M"]);
    run_ok(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            s(&base),
            s(&d("o.qcow2")),
        ],
    );
    let e = open_err(&d("o.qcow2"));
    assert!(e.contains("backing_file_offset"), "{e}");

    let e2 = d("e.qcow2");
    // qemu-img times a PBKDF run with the thread's CPU clock first and gives
    // up ("Unable to get accurate CPU usage") when a run measures 0 ms,
    // which tick-based CPU accounting does now and then: try a few times.
    let luks = [
        "create",
        "-q",
        "-f",
        "qcow2",
        "--object",
        "secret,id=s0,data=pw",
        "-o",
        "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10",
        s(&e2),
        "4M",
    ];
    let made = (0..10).any(|_| {
        Command::new("qemu-img")
            .args(luks)
            .status()
            .is_ok_and(|st| st.success())
    });
    assert!(made, "qemu-img could not create a LUKS qcow2 in 10 tries");
    let e = open_err(&e2);
    assert!(e.contains("crypt_method"), "{e}");

    run_ok(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
            s(&src),
            s(&d("s.vmdk")),
        ],
    );
    let e = open_err(&d("s.vmdk"));
    assert!(e.contains("streamOptimized"), "{e}");
}

#[test]
fn create_refuses_to_clobber() {
    let dir = tempfile::tempdir().unwrap();
    for f in ALL {
        let p = dir.path().join(format!("exists.{f}"));
        std::fs::write(&p, b"precious").unwrap();
        let e = image::create(&p, f, 64 * MIB, b"", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("already exists") && e.contains(s(&p)), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"precious");
        image::create(&p, f, 64 * MIB, b"new", true).unwrap();
        assert_eq!(image::open(&p).unwrap().format, f);
    }
    let e = image::create(Path::new("/dev/null"), ImageFormat::Raw, MIB, b"", true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/dev/null") && e.contains("device"), "{e}");
    let e = image::create(dir.path(), ImageFormat::Qcow2, MIB, b"", true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("directory"), "{e}");
    let e = image::create(
        &dir.path().join("x.vhd"),
        ImageFormat::Vhd,
        2041 * GIB,
        b"",
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("2040 GiB") && e.contains("x.vhd"), "{e}");
    assert!(!dir.path().join("x.vhd").exists());
}
