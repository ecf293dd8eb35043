//! What each fuzz target runs (`fuzz/fuzz_targets/NAME.rs` is one line
//! calling the function `NAME` here), here so the main workspace replays
//! every seed of `fuzz/seeds/` through exactly the same code
//! (`tests/fuzz_seeds.rs`). Not an API: hidden from the docs.
//!
//! Each function takes arbitrary bytes, must not panic, and asserts what
//! must hold of whatever the parser accepts; a failed assertion is a
//! finding.

use crate::disk::image::{self, ImageFormat};
use crate::disk::{probe, userdata};
use crate::guest::{cmdline, modules, profile};
use crate::wire::ready::Ready;
use std::io::Cursor;
use std::path::Path;

/// A fuzz target: its name and what it runs on each input.
pub type Target = (&'static str, fn(&[u8]));

/// Every fuzz target, by name.
pub const TARGETS: &[Target] = &[
    ("userdata_read", userdata_read),
    ("probe", probe),
    ("qcow2", qcow2),
    ("vmdk", vmdk),
    ("vhd", vhd),
    ("profile", profile),
    ("cmdline", cmdline),
    ("modules", modules),
    ("ready", ready),
];

/// The userdata reader. Anything it accepts must have clean relative
/// paths, no duplicates, masked modes, sizes within the caps, and must
/// read back the same from just its first `Archive::len` bytes.
pub fn userdata_read(data: &[u8]) {
    use userdata::{EntryKind, MAX_ARCHIVE, MAX_FILE};
    let Ok(archive) = userdata::read(data) else {
        return;
    };
    assert!(archive.len <= MAX_ARCHIVE && archive.len <= data.len());
    assert_eq!(archive.len % 512, 0);
    let mut seen = std::collections::HashSet::new();
    for e in &archive.entries {
        let p = e.path.as_str();
        assert!(!p.is_empty(), "empty path");
        assert!(!p.starts_with('/'), "absolute path {p:?}");
        assert!(!p.ends_with('/'), "trailing slash {p:?}");
        assert!(
            p.split('/').all(|c| !c.is_empty() && c != "." && c != ".."),
            "unclean path {p:?}"
        );
        assert!(!p.chars().any(char::is_control), "control char in {p:?}");
        assert!(seen.insert(p), "duplicate {p:?}");
        assert!(e.mode <= 0o777, "unmasked mode {:o} for {p:?}", e.mode);
        match e.kind {
            EntryKind::File => assert!(e.data.len() <= MAX_FILE),
            EntryKind::Dir => assert!(e.data.is_empty()),
        }
    }
    // Only the bytes up to the end marker matter: reading just them must
    // give the same archive.
    match userdata::read(&data[..archive.len]) {
        Ok(again) => assert_eq!(again, archive),
        Err(e) => panic!("the accepted prefix no longer reads: {e}"),
    }
    // The accessors must not panic either.
    let _ = archive.has_magic_entry();
    let _ = archive.authorized_keys();
    let _ = archive.b2d_files();
}

/// The partition-table and filesystem prober, on the input as a whole
/// disk.
pub fn probe(data: &[u8]) {
    let mut cursor = Cursor::new(data);
    let _ = probe::probe(&mut cursor, data.len() as u64);
}

/// A qcow2 image (the input with the qcow2 magic put at byte 0), as
/// `b2d disk inspect` reads it.
pub fn qcow2(data: &[u8]) {
    inspect(ImageFormat::Qcow2, b"QFI\xfb", data);
}

/// A vmdk image (the input with `KDMV` put at byte 0), as
/// `b2d disk inspect` reads it.
pub fn vmdk(data: &[u8]) {
    inspect(ImageFormat::Vmdk, b"KDMV", data);
}

/// A vhd image (the input with the footer cookie put at byte 0, where a
/// dynamic disk keeps the footer's copy), as `b2d disk inspect` reads it.
/// The checksums of that copy, of the footer at the end and of the
/// dynamic header are set right first, so the fuzzer's changes to their
/// fields get past the checksum to the checks behind it.
pub fn vhd(data: &[u8]) {
    let mut bytes = data.to_vec();
    if bytes.len() >= 8 {
        bytes[..8].copy_from_slice(b"conectix");
    }
    let sum = |b: &mut [u8], field: usize| {
        b[field..field + 4].fill(0);
        let s = b.iter().fold(0u32, |s, &x| s.wrapping_add(u32::from(x)));
        b[field..field + 4].copy_from_slice(&(!s).to_be_bytes());
    };
    let len = bytes.len();
    if len >= 512 {
        sum(&mut bytes[..512], 64);
        if bytes[len - 512..].starts_with(b"conectix") {
            sum(&mut bytes[len - 512..], 64);
        }
        let mut at = [0u8; 8];
        at.copy_from_slice(&bytes[16..24]);
        let at = u64::from_be_bytes(at);
        let range = usize::try_from(at)
            .ok()
            .and_then(|a| Some(a..a.checked_add(1024)?));
        if let Some(header) = range.and_then(|r| bytes.get_mut(r)) {
            sum(header, 36);
        }
    }
    inspect(ImageFormat::Vhd, b"conectix", &bytes);
}

/// Open `data` with `magic` at byte 0 as an image and inspect it. The
/// format must be the one the magic says; an error must be one line that
/// names the image once.
fn inspect(format: ImageFormat, magic: &[u8], data: &[u8]) {
    let mut bytes = data.to_vec();
    if bytes.len() < magic.len() {
        bytes.resize(magic.len(), 0);
    }
    bytes[..magic.len()].copy_from_slice(magic);
    let len = bytes.len() as u64;
    let path = Path::new("fuzz.img");
    let result = image::open_reader(Cursor::new(bytes), len, path)
        .map_err(crate::host::store::disk_image::DiskImageError::from)
        .and_then(|img| {
            assert_eq!(img.format, format);
            crate::host::store::disk_image::inspect_image(img, path)
        });
    match result {
        Ok(i) => assert_eq!(i.format, format),
        Err(e) => {
            let msg = crate::error_chain(&e);
            assert_eq!(msg.matches("fuzz.img").count(), 1, "path once: {msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    }
}

/// The boot profile parser: every variable it keeps has a valid name,
/// every error a line number of the text, and EXTRA_ARGS splits or says
/// why not.
pub fn profile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let p = profile::parse(&text);
    for k in p.vars.keys() {
        let mut cs = k.chars();
        assert!(
            cs.next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && cs.all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name kept: {k:?}"
        );
    }
    let lines = text.split('\n').count();
    for (n, e) in &p.errors {
        assert!((1..=lines).contains(n), "line {n} of {lines}: {e}");
    }
    let _ = p.extra_args();
}

/// The kernel command line parser: arguments never keep a quote, and the
/// hostname is never empty.
pub fn cmdline(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for arg in cmdline::split_kernel_args(&text) {
        assert!(!arg.contains('"'), "quote kept in {arg:?}");
    }
    let c = cmdline::parse(&text);
    assert!(c.hostname.as_deref() != Some(""), "empty hostname");
}

/// The modules.dep / softdep / alias / builtin parsers and the load plan.
/// The input is those four files and a wanted list, split at NUL bytes.
/// The plan loads each module once, after the modules it needs that are
/// loaded at all (a cycle is cut, so one of its members comes first).
pub fn modules(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let mut next = || parts.next().unwrap_or("");
    let (dep, softdep, alias, builtin, wanted) = (next(), next(), next(), next(), next());
    let ix = modules::ModIndex::parse(dep, softdep, alias, builtin);
    let wanted = modules::parse_wanted(wanted);
    let plan = modules::resolve(&ix, &wanted);
    let mut loaded = std::collections::HashSet::new();
    for (name, _, _) in &plan.load {
        assert!(loaded.insert(name.as_str()), "{name} loaded twice");
    }
    for name in plan.needs.keys() {
        assert!(
            loaded.contains(name.as_str()),
            "{name} needs but is not loaded"
        );
    }
    for (name, _) in &wanted {
        let _ = ix.alias_matches(name);
    }
}

/// The ready line parser: whatever it accepts prints as a line that
/// parses back the same, and its phases are spans that end after they
/// start.
pub fn ready(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = Ready::last_in(&text);
    let Some(r) = Ready::parse_line(&text) else {
        return;
    };
    assert_eq!(Ready::parse_line(&r.line()), Some(r.clone()), "round trip");
    for s in r.phases.spans() {
        assert!(s.start <= s.end, "{} from {} to {}", s.name, s.start, s.end);
    }
}
